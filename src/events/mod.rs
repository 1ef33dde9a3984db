//! Publish/subscribe of what changed. Events carry ids only; subscribers read the committed
//! state. On SQLite they fan out in process; on PostgreSQL every replica publishes with
//! `pg_notify` and receives through `LISTEN`, so a subscriber on one replica sees changes made
//! through another.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// The PostgreSQL channel events travel on.
const CHANNEL: &str = "dishpatch_events";
/// Events a subscriber may fall behind by before it skips ahead (it then reloads the state).
const BUFFER: usize = 1024;

/// Something that changed, after its transaction committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// An order was placed or changed (status, delivery).
    OrderChanged { order_id: i64, restaurant_id: i64 },
    /// The courier of an order reported a new position.
    CourierMoved { order_id: i64 },
}

/// Where events go and come from.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    postgres: Option<DatabaseConnection>,
}

impl EventBus {
    /// Events within this process only (the embedded SQLite set-up).
    pub fn local() -> Self {
        Self {
            sender: broadcast::channel(BUFFER).0,
            postgres: None,
        }
    }

    /// Events across every replica on the PostgreSQL database at `url`; starts the listener.
    pub fn postgres(db: DatabaseConnection, url: String) -> Self {
        let sender = broadcast::channel(BUFFER).0;
        tokio::spawn(listen(url, sender.clone()));
        Self {
            sender,
            postgres: Some(db),
        }
    }

    /// The bus for `db`: across replicas on PostgreSQL, in process otherwise.
    pub fn for_database(db: &DatabaseConnection, url: &str) -> Self {
        if db.get_database_backend() == DbBackend::Postgres {
            Self::postgres(db.clone(), url.to_owned())
        } else {
            Self::local()
        }
    }

    /// Publishes `event`. Call it after the change committed. Never blocks on subscribers.
    pub async fn publish(&self, event: Event) {
        let Some(db) = &self.postgres else {
            let _ = self.sender.send(event);
            return;
        };
        let payload = serde_json::to_string(&event).expect("events serialize");
        let notify = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), payload.into()],
        );
        if let Err(error) = db.execute_raw(notify).await {
            // The change is committed; subscribers here still hear of it.
            tracing::error!(%error, "publishing an event to other replicas failed");
            let _ = self.sender.send(event);
        }
    }

    /// A receiver of every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

/// Receives the replicas' notifications and passes them to this process's subscribers,
/// reconnecting when the connection drops.
async fn listen(url: String, sender: broadcast::Sender<Event>) {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "cannot listen for events; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::error!(%error, "cannot listen for events; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        loop {
            match listener.recv().await {
                Ok(notification) => match serde_json::from_str::<Event>(notification.payload()) {
                    Ok(event) => {
                        let _ = sender.send(event);
                    }
                    Err(error) => tracing::warn!(%error, "ignoring a malformed event"),
                },
                Err(error) => {
                    tracing::warn!(%error, "event listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}
