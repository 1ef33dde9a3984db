//! `dishpatch-baseline`: the baseline of dishpatch's benchmark, the fastest thing that can
//! reasonably be written by hand for the same work.
//!
//! It answers the three read queries of `bench/queries` (`Restaurants`, `Nested`, `Restaurant`)
//! from the same database with the same data as dishpatch: the same SQL per level (one
//! statement per relation level, `IN (...)` lists over the whole level, each restaurant's newest
//! reviews read through its index, so no N+1), the same values (global IDs, cursors, money, averages), and
//! JSON bodies that are byte-identical to dishpatch's once its top-level `extensions` entry is
//! removed (`bench/compare.py` checks). Keys follow each document's selection set.
//!
//! What it deliberately does NOT do, so that the difference measured is the price of dishpatch
//! being a real GraphQL server:
//! - no GraphQL: the `query` text is ignored; the operation is recognized by `operationName`
//!   and its variables are read (`first` for `Nested`, `slug` for `Restaurant`); anything else
//!   is a 400;
//! - no authentication, no rate limits, no cost or depth limits, no persisted queries;
//! - no `Accept` negotiation, no CORS, no request ids, no tracing, no metrics;
//! - no DataLoaders: each operation is a fixed sequence of statements, with the independent
//!   ones run concurrently.

mod db;
mod operations;

/// The same allocator as dishpatch's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Parser;
use serde::Deserialize;

use crate::db::Db;

/// The benchmark's baseline: dishpatch's benchmark queries answered by hand-written SQL and
/// JSON.
#[derive(Debug, Parser)]
#[command(name = "dishpatch-baseline", about)]
struct Cli {
    /// Database: `sqlite://path` or `postgres://user@host/db`, as for dishpatch.
    #[arg(long, value_name = "URL")]
    database_url: String,
    /// Address to listen on, `host:port`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    listen: String,
    /// Connection pool size. 16: more do not help the baseline in the benchmark (24 and 32
    /// measured slower or within the noise); dishpatch's default is 4 on SQLite and 24 on
    /// PostgreSQL.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_connections: u32,
}

/// The parts of a GraphQL-over-HTTP request body the baseline reads.
#[derive(Deserialize)]
struct GraphQlRequest {
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<Variables>,
}

/// The variables of the benchmark operations.
#[derive(Default, Deserialize)]
struct Variables {
    first: Option<i64>,
    slug: Option<String>,
}

/// `POST /graphql`.
async fn graphql(db: web::Data<Db>, body: web::Bytes) -> HttpResponse {
    let Ok(request) = serde_json::from_slice::<GraphQlRequest>(&body) else {
        return HttpResponse::BadRequest().body("expected a JSON GraphQL request");
    };
    let variables = request.variables.unwrap_or_default();
    let answer = match (request.operation_name.as_deref(), variables) {
        (Some("Restaurants"), _) => operations::restaurants(&db).await,
        (
            Some("Nested"),
            Variables {
                first: Some(first @ 0..=100),
                ..
            },
        ) => operations::nested(&db, first).await,
        (
            Some("Restaurant"),
            Variables {
                slug: Some(slug), ..
            },
        ) => operations::restaurant(&db, &slug).await,
        _ => {
            return HttpResponse::BadRequest().body(
                "only `Restaurants`, `Nested` with `first` (0 to 100) and `Restaurant` with \
                 `slug` are served",
            );
        }
    };
    match answer {
        Ok(answer) => HttpResponse::Ok()
            .content_type("application/json")
            .insert_header(("x-sql-statements", answer.statements))
            .body(answer.body),
        Err(error) => {
            eprintln!("dishpatch-baseline: {error}");
            HttpResponse::InternalServerError().finish()
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let db = Db::connect(&cli.database_url, cli.max_connections)
        .await
        .map_err(std::io::Error::other)?;
    let db = web::Data::new(db);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(db.clone())
            .route("/graphql", web::post().to(graphql))
    })
    .bind(&cli.listen)?;
    for address in server.addrs() {
        eprintln!("dishpatch-baseline serving POST /graphql on http://{address}");
    }
    server.run().await
}
