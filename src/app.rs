//! `Application`: the whole server, built from settings. `main` and the tests use the same one.

use std::net::TcpListener;

use actix_web::{App, HttpServer, dev::Server, middleware::from_fn, web};
use anyhow::Context;
use sea_orm::DatabaseConnection;

use crate::{config::Settings, db, graphql, http, seed};

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    db: DatabaseConnection,
}

impl Application {
    /// Connects to the database, migrates and seeds as configured, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = db::connect(&settings.database_url, settings.database_max_connections)
            .await
            .with_context(|| {
                format!(
                    "connecting to the {} database",
                    settings.database_url.scheme()
                )
            })?;
        if settings.migrate_on_start {
            db::migrate(&db).await.context("applying migrations")?;
        }
        if settings.demo && seed::is_empty(&db).await? {
            tracing::info!("seeding the demo data");
            seed::seed_demo(&db, 1)
                .await
                .context("seeding the demo data")?;
        }
        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("listening on {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(http::AppState::new(
            graphql::build_schema(db.clone()),
            db.clone(),
            &settings,
        ));
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(http::request_span))
                .app_data(state.clone())
                .configure(http::routes)
        })
        .listen(listener)?
        .shutdown_timeout(settings.shutdown_timeout_secs)
        .run();
        Ok(Self { port, server, db })
    }

    /// The port the server listens on (useful when it was asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database connection pool.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
