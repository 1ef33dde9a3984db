//! Database connection, migrations, and counting the SQL statements each request executes.

use std::{
    collections::HashMap,
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
/// waiting, when another writer committed in between. SQLite lets one writer in at a time, and
/// one that finds the lock taken sleeps in SQLite's busy handler (1, 2, 5, … up to 100 ms
/// between tries): with many writers waiting, a write could wait far longer than the writes
/// ahead of it took. So writers of this process first take their turn here, in order, and
/// reach SQLite's lock when it is free. Waiting for a turn is bounded like waiting for a
/// connection: after `WRITE_TURN_TIMEOUT` it fails as the database being unavailable.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTransaction, sea_orm::DbErr> {
    begin_write_at(db, None).await
}

/// `begin_write` at an isolation level on PostgreSQL (SQLite's writer sees every commit).
pub async fn begin_write_at(
    db: &DatabaseConnection,
    postgres_isolation: Option<sea_orm::IsolationLevel>,
) -> Result<WriteTransaction, sea_orm::DbErr> {
    let sqlite = db.get_database_backend() == DbBackend::Sqlite;
    let turn = if sqlite {
        Some(write_turn(db).await?)
    } else {
        None
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            isolation_level: postgres_isolation.filter(|_| !sqlite),
            ..TransactionOptions::default()
        })
        .await?;
    Ok(WriteTransaction { txn, _turn: turn })
}

/// How long a writer waits for its turn to write to SQLite: SQLite's own busy timeout.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// This process's turn to write to the SQLite file `db` opened; one queue per file.
async fn write_turn(
    db: &DatabaseConnection,
) -> Result<tokio::sync::OwnedMutexGuard<()>, sea_orm::DbErr> {
    static TURNS: std::sync::LazyLock<
        std::sync::Mutex<HashMap<std::path::PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    > = std::sync::LazyLock::new(Default::default);
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let queue = TURNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(file)
        .or_default()
        .clone();
    tokio::time::timeout(WRITE_TURN_TIMEOUT, queue.lock_owned())
        .await
        .map_err(|_| sea_orm::DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout))
}

/// A transaction begun by `begin_write`, holding (on SQLite) this process's turn to write
/// until it is committed, rolled back or dropped. It is used like the `DatabaseTransaction`
/// it wraps.
pub struct WriteTransaction {
    // Declared first, so dropped first: the turn passes on after the transaction has ended.
    txn: DatabaseTransaction,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTransaction {
    pub async fn commit(self) -> Result<(), sea_orm::DbErr> {
        self.txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), sea_orm::DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTransaction {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, sea_orm::DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, sea_orm::DbErr> {
        self.txn.query_all_raw(stmt).await
    }
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

#[cfg(test)]
mod write_turn_tests {
    use std::time::Duration;

    use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};

    use super::{begin_write, connect};
    use crate::config::DatabaseUrl;

    async fn write(db: DatabaseConnection, writer: i64) {
        let txn = begin_write(&db).await.expect("a turn to write");
        txn.execute_unprepared(&format!("INSERT INTO turns VALUES ({writer})"))
            .await
            .expect("insert");
        txn.commit().await.expect("commit");
    }

    /// Writers to one SQLite file write in the order they asked to, whatever SQLite's busy
    /// handler would have chosen: a writer that has waited long sleeps up to 100 ms between its
    /// tries at SQLite's lock, so one that came later but tries sooner would overtake it (and
    /// could starve it). A transaction dropped without a commit passes the turn on too.
    #[tokio::test]
    async fn sqlite_writers_take_turns_in_the_order_they_came() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("turns.db");
        let url = DatabaseUrl(format!("sqlite://{}?mode=rwc", file.display()));
        let db = connect(&url, 4).await.expect("open SQLite");
        db.execute_unprepared("CREATE TABLE turns (writer INTEGER NOT NULL)")
            .await
            .expect("create the table");

        let first = begin_write(&db).await.expect("the first turn");
        first
            .execute_unprepared("INSERT INTO turns VALUES (0)")
            .await
            .expect("insert");
        let early = tokio::spawn(write(db.clone(), 1));
        // Long enough for SQLite's busy handler to be sleeping 25 ms between tries.
        tokio::time::sleep(Duration::from_millis(120)).await;
        let late = tokio::spawn(write(db.clone(), 2));
        tokio::time::sleep(Duration::from_millis(3)).await;
        first.commit().await.expect("commit");
        early.await.expect("the early writer");
        late.await.expect("the late writer");

        let abandoned = begin_write(&db).await.expect("a turn");
        abandoned
            .execute_unprepared("INSERT INTO turns VALUES (99)")
            .await
            .expect("insert");
        drop(abandoned);
        tokio::time::timeout(Duration::from_secs(5), write(db.clone(), 3))
            .await
            .expect("the turn passed on when the transaction was dropped");

        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT writer FROM turns ORDER BY rowid",
            ))
            .await
            .expect("read");
        let order: Vec<i64> = rows
            .iter()
            .map(|row| row.try_get_by_index(0).expect("writer"))
            .collect();
        assert_eq!(order, [0, 1, 2, 3]);
    }
}
