//! A pool of SQLite or PostgreSQL connections, configured as dishpatch configures its own, and
//! one `fetch` that runs the same SQL text (with `$n` placeholders) on either.

use std::{str::FromStr, time::Duration};

use sqlx::{
    FromRow, SqlSafeStr,
    postgres::{PgPool, PgPoolOptions, PgRow},
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
};

/// A connection pool to either database.
#[derive(Clone)]
pub enum Db {
    /// `sqlite://…`
    Sqlite(SqlitePool),
    /// `postgres://…`
    Postgres(PgPool),
}

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    /// An integer (`BIGINT`).
    Int(i64),
    /// A string.
    Text(&'a str),
}

impl Db {
    /// Connects like dishpatch does: up to `max_connections`, and on SQLite WAL mode,
    /// `synchronous = NORMAL`, foreign keys and a 10 s busy timeout.
    pub async fn connect(url: &str, max_connections: u32) -> sqlx::Result<Self> {
        let timeout = Duration::from_secs(10);
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .min_connections(1)
                .acquire_timeout(timeout)
                .connect(url)
                .await?;
            Ok(Self::Postgres(pool))
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(timeout);
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .min_connections(1)
                .acquire_timeout(timeout)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        }
    }

    /// Runs one statement (prepared, and cached per connection by its text) and reads every
    /// row it returns as a tuple of the selected columns.
    pub async fn fetch<T>(&self, sql: impl SqlSafeStr, params: &[Param<'_>]) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        macro_rules! run {
            ($pool:expr) => {{
                let mut query = sqlx::query_as(sql);
                for param in params {
                    query = match *param {
                        Param::Int(value) => query.bind(value),
                        Param::Text(value) => query.bind(value),
                    };
                }
                query.fetch_all($pool).await
            }};
        }
        match self {
            Self::Sqlite(pool) => run!(pool),
            Self::Postgres(pool) => run!(pool),
        }
    }
}

/// `ids` bound as one parameter, as dishpatch's loaders bind them (`db::one_of`), so each
/// statement has one text whatever the number of ids: the condition to put after the column
/// (reading `$1`), and the parameter's text (a PostgreSQL `bigint[]` literal or a JSON array),
/// without duplicates, in ascending order.
pub fn one_of(db: &Db, ids: impl IntoIterator<Item = i64>) -> (&'static str, String) {
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    match db {
        Db::Postgres(_) => ("= ANY(CAST($1 AS bigint[]))", format!("{{{list}}}")),
        Db::Sqlite(_) => ("IN (SELECT value FROM json_each($1))", format!("[{list}]")),
    }
}
