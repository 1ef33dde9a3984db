//! State that replicas share through Redis when `redis_url` is set: rate-limit budgets and
//! persisted queries.

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A connection to the shared Redis, with the prefix every key gets.
#[derive(Clone)]
pub struct Redis {
    pub connection: ConnectionManager,
    prefix: String,
}

impl Redis {
    /// Connects to `url`. Commands time out quickly so that a slow Redis slows requests by
    /// at most a second; callers decide what a failure means.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("reading redis_url")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = client
            .get_connection_manager_with_config(config)
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            connection,
            prefix: prefix.to_owned(),
        })
    }

    /// `name` under this deployment's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}
