//! `dishpatch-baseline`: the baseline of dishpatch's benchmark, the fastest thing that can
//! reasonably be written by hand for the same work.
//!
//! It answers the three read queries of `bench/queries` (`Restaurants`, `Nested`, `Restaurant`)
//! from the same database with the same data as dishpatch: the same SQL per level (one
//! statement per relation level, the level's ids bound as one array as dishpatch's loaders bind
//! them, each restaurant's newest reviews read through its index, so no N+1), the same values
//! (global IDs, cursors, money, averages), and
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
    /// measured slower or within the noise); dishpatch's default is 16 on SQLite and 24 on
    /// PostgreSQL.
    #[arg(long, value_name = "N", default_value_t = 16)]
    max_connections: u32,
    /// Instead of serving: run each benchmark case in-process for this many seconds (the
    /// baseline's statements, rows and JSON, no HTTP and no GraphQL) and print what that
    /// sustains, the floor under both servers.
    #[arg(long, value_name = "SECONDS")]
    floor: Option<u64>,
    /// Cases running at once in `--floor`, as the benchmark's connections.
    #[arg(long, value_name = "N", default_value_t = 64)]
    floor_tasks: usize,
}

/// `--floor`: each case in a loop on `tasks` tasks for `seconds`, one Markdown row each.
async fn floor(db: Db, seconds: u64, tasks: usize) -> std::io::Result<()> {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicBool, AtomicU64, Ordering},
        },
        time::{Duration, Instant},
    };
    let db = Arc::new(db);
    println!("| case | tasks | runs/s | CPU ms/run (this process) |");
    println!("|---|---:|---:|---:|");
    for case in ["Q1", "Q2 first 10", "Q2 first 100", "Q3"] {
        let (runs, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let cpu_before = cpu_seconds()?;
        let started = Instant::now();
        let workers: Vec<_> = (0..tasks)
            .map(|_| {
                let (db, runs, stop) = (db.clone(), runs.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let answer = match case {
                            "Q1" => operations::restaurants(&db).await,
                            "Q2 first 10" => operations::nested(&db, 10).await,
                            "Q2 first 100" => operations::nested(&db, 100).await,
                            _ => operations::restaurant(&db, "trattoria-roma").await,
                        };
                        answer.map_err(|error| std::io::Error::other(error.to_string()))?;
                        runs.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), std::io::Error>(())
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            worker.await.map_err(std::io::Error::other)??;
        }
        let (elapsed, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds()? - cpu_before);
        let runs = runs.load(Ordering::Relaxed) as f64;
        println!(
            "| {case} | {tasks} | {:.0} | {:.3} |",
            runs / elapsed,
            cpu * 1000.0 / runs
        );
    }
    Ok(())
}

/// This process's user and system CPU time so far, from `/proc/self/stat`.
fn cpu_seconds() -> std::io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| -> f64 {
        fields
            .get(index)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0.0)
    };
    // utime and stime, in clock ticks (100 per second on Linux).
    Ok((ticks(11) + ticks(12)) / 100.0)
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
    if let Some(seconds) = cli.floor {
        return floor(db, seconds, cli.floor_tasks).await;
    }
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
