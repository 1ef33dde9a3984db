//! Database connection, migrations, and counting the SQL statements each request executes.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::config::DatabaseUrl;

tokio::task_local! {
    /// The statement counter of the request the current task works for.
    static STATEMENTS: Arc<AtomicU32>;
}

/// Counts the SQL statements one request executes, including those of its DataLoader tasks.
#[derive(Debug, Clone, Default)]
pub struct StatementCounter(Arc<AtomicU32>);

impl StatementCounter {
    /// Runs `future` so that statements it executes, on this task, are counted here.
    pub async fn scope<F: Future>(&self, future: F) -> F::Output {
        STATEMENTS.scope(self.0.clone(), future).await
    }

    /// Statements counted so far.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Connects, configures SQLite for concurrent use, and installs the statement counter.
pub async fn connect(
    url: &DatabaseUrl,
    max_connections: u32,
) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url.expose());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        // Shorter than the 10 s execution limit: a request waiting for a connection that does
        // not come (the database is down, or every connection is busy for that long) fails as
        // SERVICE_UNAVAILABLE with `Retry-After`, not as a query that ran too long.
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true)
        });
    let mut db = Database::connect(options).await?;
    db.set_metric_callback(|_info| {
        crate::metrics::METRICS.sql_statements.inc();
        let _ = STATEMENTS.try_with(|count| count.fetch_add(1, Ordering::Relaxed));
    });
    Ok(db)
}

/// `connect` for people: a URL that is not SQLite or PostgreSQL, a PostgreSQL server that
/// cannot be reached (said within seconds, naming the host, instead of after the pool's
/// timeout) and a refused connection each get one plain sentence.
pub async fn open(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    match url.scheme() {
        "sqlite" => {}
        "postgres" | "postgresql" => probe_postgres(url).await?,
        _ => anyhow::bail!(
            "the database URL must be sqlite://FILE?mode=rwc or postgres://USER@HOST/DATABASE"
        ),
    }
    connect(url, max_connections).await.map_err(|error| {
        let detail = match error {
            sea_orm::DbErr::Conn(sea_orm::RuntimeErr::SqlxError(inner)) => plain_sqlx_error(&inner),
            other => other.to_string(),
        };
        anyhow::anyhow!(
            "cannot open the {} database: {detail}",
            url.scheme().trim_end_matches("ql")
        )
    })
}

/// A TCP connection to the server named in a PostgreSQL URL, within 3 seconds.
async fn probe_postgres(url: &DatabaseUrl) -> anyhow::Result<()> {
    use std::str::FromStr;
    let options = sea_orm::sqlx::postgres::PgConnectOptions::from_str(url.expose())
        .map_err(|_| anyhow::anyhow!("the PostgreSQL URL cannot be parsed"))?;
    let (host, port) = (options.get_host().to_owned(), options.get_port());
    if host.starts_with('/') {
        return Ok(()); // a Unix socket directory: connecting tells
    }
    let target = format!("{host}:{port}");
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&target),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(anyhow::anyhow!(
            "cannot reach PostgreSQL at {target}: {}",
            match error.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                _ => error.to_string(),
            }
        )),
        Err(_) => Err(anyhow::anyhow!(
            "cannot reach PostgreSQL at {target}: no answer within 3 seconds"
        )),
    }
}

/// sqlx's error without its internals (source locations, wrapper names).
fn plain_sqlx_error(error: &sea_orm::sqlx::Error) -> String {
    match error {
        sea_orm::sqlx::Error::Database(database) => database.message().to_owned(),
        sea_orm::sqlx::Error::Io(io) => io.to_string(),
        sea_orm::sqlx::Error::PoolTimedOut => "no connection within the timeout".to_owned(),
        other => other.to_string(),
    }
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a deferred transaction that read first would fail outright, instead of
/// waiting, when another writer committed in between.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, sea_orm::DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Applies pending migrations. On PostgreSQL an advisory lock makes replicas that start
/// together take turns instead of racing each other.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        let txn = db.begin().await?;
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7215400417)")
            .await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await
    } else {
        Migrator::up(db, None).await
    }
}
