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

/// `column` is one of `ids`, with all of them bound as one parameter: a loader sends one
/// statement text whatever the size of its batch, so each connection prepares it once and
/// the statement caches hold one copy, where an `IN (?, ?, …)` list is a new text for every
/// length. PostgreSQL reads a `bigint[]` (`= ANY`, through the column's index), SQLite a JSON
/// array (`json_each`).
pub fn one_of(
    column: impl sea_orm::ColumnTrait,
    ids: &[i64],
    backend: DbBackend,
) -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::Expr;
    let (list, template) = match backend {
        DbBackend::Postgres => (id_list(ids, '{', '}'), "$1 = ANY(CAST($2 AS bigint[]))"),
        // sea-query numbers `$n` for PostgreSQL only; SQLite's custom expressions take `?`.
        _ => (
            id_list(ids, '[', ']'),
            "? IN (SELECT value FROM json_each(?))",
        ),
    };
    Expr::cust_with_exprs(template, [column.into_expr(), Expr::val(list)])
}

/// The values bound to a hand-written statement, each with its placeholder.
pub struct Params {
    pub values: Vec<sea_orm::Value>,
    postgres: bool,
}

impl Params {
    pub fn new(backend: DbBackend) -> Self {
        Self {
            values: Vec::new(),
            postgres: backend == DbBackend::Postgres,
        }
    }

    /// Binds `ids` as one value (`id_list`: a `bigint[]` literal on PostgreSQL, a JSON array
    /// on SQLite); returns its placeholder.
    pub fn push_ids(&mut self, ids: &[i64]) -> String {
        let list = if self.postgres {
            id_list(ids, '{', '}')
        } else {
            id_list(ids, '[', ']')
        };
        self.push(list)
    }

    /// Binds `ids` as one value; returns the condition that a column (written before it) is one
    /// of them, as `one_of` writes it.
    pub fn push_any(&mut self, ids: &[i64]) -> String {
        let ids = self.push_ids(ids);
        if self.postgres {
            format!("= ANY(CAST({ids} AS bigint[]))")
        } else {
            format!("IN (SELECT value FROM json_each({ids}))")
        }
    }

    /// Binds `value`; returns its placeholder (`$n` on PostgreSQL, `?` on SQLite, where
    /// placeholders are numbered by their place in the text, so push in text order).
    pub fn push(&mut self, value: impl Into<sea_orm::Value>) -> String {
        self.values.push(value.into());
        if self.postgres {
            format!("${}", self.values.len())
        } else {
            "?".to_owned()
        }
    }
}

/// `ids` as text between `open` and `close`, comma-separated: a PostgreSQL array literal
/// (`{1,2}`) or a JSON array (`[1,2]`).
pub fn id_list(ids: &[i64], open: char, close: char) -> String {
    let mut list = String::with_capacity(2 + ids.len() * 8);
    list.push(open);
    let mut digits = itoa::Buffer::new();
    for (index, id) in ids.iter().enumerate() {
        if index > 0 {
            list.push(',');
        }
        list.push_str(digits.format(*id));
    }
    list.push(close);
    list
}

#[cfg(test)]
mod one_of_tests {
    use entities::restaurant;
    use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};

    use super::one_of;

    fn sql(backend: DbBackend, ids: &[i64]) -> (String, Vec<sea_orm::Value>) {
        let statement = restaurant::Entity::find()
            .filter(one_of(restaurant::Column::Id, ids, backend))
            .build(backend);
        let values = statement.values.map(|values| values.0).unwrap_or_default();
        (statement.sql, values)
    }

    #[test]
    fn one_statement_text_for_any_number_of_ids() {
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let (one, one_values) = sql(backend, &[7]);
            let (three, three_values) = sql(backend, &[1, 2, -3]);
            assert_eq!(one, three, "{backend:?}");
            assert_eq!(one_values.len(), 1, "{one} {one_values:?}");
            assert_eq!(three_values.len(), 1);
        }
        let (text, values) = sql(DbBackend::Postgres, &[1, 2, -3]);
        assert!(
            text.ends_with(r#"WHERE "restaurants"."id" = ANY(CAST($1 AS bigint[]))"#),
            "{text}"
        );
        assert_eq!(values, vec![sea_orm::Value::from("{1,2,-3}")]);
        let (text, values) = sql(DbBackend::Sqlite, &[]);
        assert!(
            text.ends_with(r#"WHERE "restaurants"."id" IN (SELECT value FROM json_each(?))"#),
            "{text}"
        );
        assert_eq!(values, vec![sea_orm::Value::from("[]")]);
    }
}
