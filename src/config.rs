//! Settings, layered: built-in defaults, then an optional TOML file, then `DISHPATCH_*`
//! environment variables, then command-line flags.

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

/// Everything the server needs to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on, `host:port`; port 0 picks a free one.
    pub listen: String,
    /// `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    pub database_url: DatabaseUrl,
    /// Upper bound of the database connection pool.
    pub database_max_connections: u32,
    /// Apply pending migrations when the server starts.
    pub migrate_on_start: bool,
    /// Seed the demo data set when the database has no restaurants.
    pub demo: bool,
    /// `pretty` for a terminal, `json` for log collectors.
    pub log_format: LogFormat,
    /// A `tracing` env-filter directive; `RUST_LOG` wins when set.
    pub log_filter: String,
    /// Serve GraphiQL to browsers on `GET /graphql`.
    pub graphiql: bool,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Most operations in one batched request; 0 turns batching off.
    pub max_batch_size: usize,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    pub shutdown_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: DatabaseUrl("sqlite://dishpatch.db?mode=rwc".into()),
            database_max_connections: 16,
            migrate_on_start: true,
            demo: false,
            log_format: LogFormat::Pretty,
            log_filter: "info,sqlx=warn,sea_orm=warn".into(),
            graphiql: true,
            max_body_bytes: 1 << 20,
            max_batch_size: 10,
            shutdown_timeout_secs: 30,
        }
    }
}

impl Settings {
    /// Defaults, then `file` (or `dishpatch.toml` when present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        match file {
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => figment = figment.merge(Toml::file("dishpatch.toml")),
        }
        figment
            .merge(Env::prefixed("DISHPATCH_"))
            .extract()
            .map_err(Box::new)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A database URL; it may carry a password, so `Debug` shows only the scheme.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    /// The URL itself, for connecting. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `sqlite` or `postgres`, safe to log.
    pub fn scheme(&self) -> &str {
        self.0.split(':').next().unwrap_or_default()
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://[redacted]", self.scheme())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_debug_hides_credentials() {
        let url = DatabaseUrl("postgres://app:hunter2@db/dishpatch".into());
        assert_eq!(format!("{url:?}"), "postgres://[redacted]");
    }
}
