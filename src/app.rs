//! `Application`: the whole server, built from settings. `main` and the tests use the same one.

use std::net::TcpListener;

use tokio::signal::unix::{SignalKind, signal};

use actix_web::{
    App, HttpServer,
    dev::Server,
    http::header::X_CONTENT_TYPE_OPTIONS,
    middleware::{Condition, DefaultHeaders, from_fn},
    web,
};
use anyhow::Context;
use sea_orm::DatabaseConnection;

use std::sync::Arc;

use crate::{
    auth::{
        kept_key,
        oauth::{self, AuthState, ExternalTokens, JwksCache, OAuth},
        tokens::AccessTokens,
        viewer::Authenticator,
    },
    config::{Environment, Settings},
    db,
    events::EventBus,
    graphql, http,
    persisted::PersistedQueries,
    ratelimit::RateLimiter,
    seed,
    shared_state::Redis,
    shutdown::Drain,
};

/// The kernel send buffer of every connection, in bytes (Linux doubles it for its own
/// bookkeeping): room for the largest responses to leave at once on a local network, not for
/// megabytes queued to a client that does not read.
pub const SEND_BUFFER_BYTES: usize = 128 * 1024;

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    db: DatabaseConnection,
    tokens: Arc<AccessTokens>,
    drain: Arc<Drain>,
    drain_delay: std::time::Duration,
}

impl Application {
    /// Binds the listener, then connects to the database, migrates and seeds as configured.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Bind first: a taken port is reported before any database file is made or migrated.
        let listener = bind(&settings.listen)?;
        let port = listener.local_addr()?.port();
        let db = db::open(&settings.database_url, settings.pool_size()).await?;
        if settings.migrate_on_start {
            db::migrate(&db).await.context("applying migrations")?;
        }
        if settings.demo {
            if seed::is_empty(&db).await? {
                tracing::info!("seeding the demo data");
                seed::seed_demo(&db, 1)
                    .await
                    .context("seeding the demo data")?;
                let media =
                    crate::media::Media::from_settings(&settings.media, &settings.database_url)
                        .context("opening the media directory")?;
                seed::demo_photos(&db, &media)
                    .await
                    .context("drawing the demo's photos")?;
            } else {
                tracing::info!("the database already has restaurants: not seeding the demo data");
            }
        }
        // Open-now filters need each zone's offset at the instant asked; learn the zones now.
        crate::services::restaurants::ZoneClock::start(db.clone()).await?;
        let mut auth = settings.auth.clone();
        auth.signing_keys = kept_key::signing_keys(&auth.signing_keys, &settings.database_url)?;
        let tokens = Arc::new(AccessTokens::from_settings(&auth)?);
        let jwks = Arc::new(JwksCache::new(oauth::provider_http_client()));
        let authenticator = Arc::new(Authenticator {
            db: db.clone(),
            tokens: tokens.clone(),
            external: settings
                .auth
                .resource_server
                .clone()
                .map(|rs| ExternalTokens::new(rs, settings.auth.clock_skew_secs, jwks.clone())),
        });
        let listen_url = format!("http://{}", listener.local_addr()?);
        let auth_state = web::Data::new(AuthState {
            db: db.clone(),
            tokens: tokens.clone(),
            oauth: OAuth::new(&settings.auth, &listen_url, tokens.signing_secret(), jwks),
        });
        let redis = match &settings.redis_url {
            Some(url) => Some(Redis::connect(url.expose(), &settings.redis_key_prefix).await?),
            None => None,
        };
        let limiter = Arc::new(match &redis {
            Some(redis) => RateLimiter::shared(settings.rate_limit.clone(), redis.clone()),
            None => RateLimiter::in_memory(settings.rate_limit.clone()),
        });
        let persisted = Arc::new(PersistedQueries::new(&settings.persisted_queries, redis)?);
        // One HTTP worker per core (actix-web's default, made explicit): the admission budgets
        // (requests and cost executing at once) are shared out between exactly these.
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let documents = Arc::new(graphql::documents::Documents::default());
        let webhooks = webhook_policy(&settings, &auth.signing_keys);
        let media = crate::media::Media::from_settings(&settings.media, &settings.database_url)
            .context("opening the media directory")?;
        if settings.webhooks.send {
            let sender = crate::webhooks::sender::Sender::new(
                db.clone(),
                settings.webhooks.clone(),
                webhooks.secrets.clone(),
            )?;
            tokio::spawn(sender.run());
        }
        let schema = graphql::build_schema(
            db.clone(),
            EventBus::start(db.clone(), settings.database_url.expose()).await?,
            graphql::SchemaOptions {
                limits: settings.limits.clone(),
                limiter: Some(limiter),
                introspection: settings.introspection_enabled(),
                suggestions: settings.environment != Environment::Production,
                persisted: Some(persisted.clone()),
                workers,
                documents: documents.clone(),
                webhooks,
                media: media.clone(),
            },
        );
        let state = web::Data::new(http::AppState::new(
            schema,
            db.clone(),
            authenticator,
            http::Shared {
                persisted,
                documents,
                media,
            },
            &settings,
            workers,
        ));
        let drain = state.drain.clone();
        let (cors_origins, cors_headers) = (
            settings.cors_allowed_origins.clone(),
            settings.cors_allowed_headers.clone(),
        );
        let server = HttpServer::new(move || {
            // Runs once on each worker as it starts: its operations get their own share of the
            // admission budgets.
            graphql::limits::claim_admission_share();
            App::new()
                // No response is to be read as another type than it says (the GraphiQL page
                // and JSON alike).
                .wrap(DefaultHeaders::new().add((X_CONTENT_TYPE_OPTIONS, "nosniff")))
                // Without allowed origins there is no CORS at all: no headers, no `Vary`.
                .wrap(Condition::new(
                    !cors_origins.is_empty(),
                    http::cors(&cors_origins, &cors_headers),
                ))
                .wrap(from_fn(http::request_span))
                .app_data(state.clone())
                .app_data(auth_state.clone())
                .configure(http::routes)
                .configure(oauth::routes)
        })
        .workers(workers)
        // A fixed kernel send buffer per connection instead of Linux's autotuning (up to 4 MiB):
        // a client that stops reading (a WebSocket subscriber above all) holds at most this
        // much of the server's memory in the kernel, plus actix-ws's 32 queued messages,
        // until the send timeout closes it.
        .on_connect(|connection, _| {
            if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
                let _ = socket2::SockRef::from(tcp).set_send_buffer_size(SEND_BUFFER_BYTES);
            }
        })
        .listen(listener)?
        .shutdown_timeout(settings.shutdown_timeout_secs)
        // Signals are handled in `run_until_stopped`: actix stops at once on SIGINT, and
        // Ctrl-C must let in-flight requests finish as SIGTERM does.
        .disable_signals()
        .run();
        Ok(Self {
            port,
            server,
            db,
            tokens,
            drain,
            drain_delay: std::time::Duration::from_secs(settings.shutdown_drain_secs),
        })
    }

    /// The port the server listens on (useful when it was asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database connection pool.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Issues dishpatch access tokens with the server's keys.
    pub fn tokens(&self) -> &Arc<AccessTokens> {
        &self.tokens
    }

    /// Serves until SIGINT or SIGTERM, then drains (`shutdown`) and lets in-flight requests
    /// finish (for up to `shutdown_timeout_secs`); a second SIGINT stops at once.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (handle, drain, delay) = (self.server.handle(), self.drain.clone(), self.drain_delay);
        let signals = tokio::spawn(async move {
            let Ok(mut interrupt) = signal(SignalKind::interrupt()) else {
                return;
            };
            let Ok(mut terminate) = signal(SignalKind::terminate()) else {
                return;
            };
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
            tracing::info!(
                signal = name,
                "stopping: finishing the requests in flight (Ctrl-C again to stop at once)"
            );
            drain.begin();
            // An orchestrator's SIGTERM: keep serving while load balancers see /readyz fail.
            if name == "SIGTERM" && !delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = interrupt.recv() => {
                        handle.stop(false).await;
                        return;
                    }
                }
            }
            let graceful = handle.stop(true);
            tokio::select! {
                () = graceful => {}
                _ = interrupt.recv() => {
                    tracing::warn!("second SIGINT: stopping at once");
                    handle.stop(false).await;
                }
            }
        });
        let served = self.server.await;
        signals.abort();
        served
    }
}

/// The key that seals webhook secrets: `webhooks.encryption_key`, else the first signing
/// key; without either, one for this process only (secrets made now are unreadable after a
/// restart, which is said once here).
fn webhook_policy(
    settings: &Settings,
    signing_keys: &[crate::config::SigningKey],
) -> crate::services::webhooks::Policy {
    let material = match (&settings.webhooks.encryption_key, signing_keys.first()) {
        (Some(key), _) => key.expose().to_owned(),
        (None, Some(key)) => key.secret.expose().to_owned(),
        (None, None) => {
            tracing::warn!(
                "no webhooks.encryption_key and no auth.signing_keys: webhook signing secrets \
                 created now cannot be read after a restart"
            );
            crate::auth::secrets::random_secret()
        }
    };
    crate::services::webhooks::Policy {
        secrets: crate::webhooks::signing::SecretBox::new(&material),
        allow_private: settings.webhooks.allow_private_targets,
    }
}

/// Binds `listen`, with a hint when it is not `HOST:PORT`.
fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    if !listen.contains(':') {
        anyhow::bail!(
            "cannot listen on `{listen}`: give HOST:PORT, e.g. `127.0.0.1:{listen}` or `0.0.0.0:{listen}`"
        );
    }
    TcpListener::bind(listen).map_err(|error| match error.kind() {
        std::io::ErrorKind::AddrInUse => {
            anyhow::anyhow!("cannot listen on {listen}: the address is already in use")
        }
        _ => anyhow::anyhow!("cannot listen on {listen}: {error}"),
    })
}
