//! Sends due deliveries: at least once, signed, per endpoint in the order they were recorded.
//!
//! Each pass takes up to `webhooks.concurrency` due deliveries in one statement that also
//! leases them (`lease_until`): only the oldest pending delivery of each endpoint is ever due,
//! so an endpoint gets one request at a time, in order, and a delivery waiting for its retry
//! holds back the ones behind it. On PostgreSQL the statement skips rows another replica is
//! leasing right now (`FOR UPDATE SKIP LOCKED`), so each delivery goes out from one replica;
//! if that replica dies, the lease runs out and another one sends it (with the same
//! `webhook-id`, so the receiver can tell).
//!
//! An attempt succeeds on any 2xx answer within `webhooks.timeout_ms`. Anything else is
//! retried after the next wait of `webhooks.retry_schedule_secs` (jittered); when they are
//! used up the delivery is failed. An endpoint that has failed every attempt for
//! `webhooks.disable_after_secs` is disabled, with the reason, until its owner enables it.

use std::{fmt::Write as _, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use entities::{WebhookDeliveryStatus, webhook, webhook_delivery};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    Statement,
};

use super::{signing, target};
use crate::{config::WebhookSettings, metrics::METRICS};

/// Bytes of a response body kept for the delivery log.
const KEPT_RESPONSE_BYTES: usize = 1024;
/// The `User-Agent` of every delivery.
const USER_AGENT: &str = concat!("dishpatch-webhooks/", env!("CARGO_PKG_VERSION"));
/// How often a sending process deletes deliveries past `webhooks.keep_days`.
const PRUNE_EVERY: Duration = Duration::from_hours(1);
/// Deliveries deleted per statement, so a large backlog never holds the database for long.
const PRUNE_BATCH: u64 = 1000;

/// Deletes the sent and failed deliveries older than `keep_days` (0: none), at start and
/// then hourly, a batch at a time, beside the sending (a backlog to delete on a first start
/// does not hold up deliveries).
async fn prune_every_hour(db: DatabaseConnection, keep_days: u32) {
    if keep_days == 0 {
        return;
    }
    let mut hourly = tokio::time::interval(PRUNE_EVERY);
    loop {
        hourly.tick().await;
        // A keep reaching before any date there is keeps everything.
        let Some(before) =
            Utc::now().checked_sub_signed(chrono::Duration::days(i64::from(keep_days)))
        else {
            return;
        };
        loop {
            match crate::services::webhooks::prune_deliveries(&db, before, PRUNE_BATCH).await {
                Ok(deleted) if deleted == PRUNE_BATCH => {}
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(?error, "deleting old webhook deliveries failed");
                    break;
                }
            }
        }
    }
}

/// The sender of one process.
pub struct Sender {
    db: DatabaseConnection,
    settings: WebhookSettings,
    secrets: signing::SecretBox,
    client: reqwest::Client,
}

/// What one attempt came to.
struct Outcome {
    status_code: Option<i32>,
    /// Why it failed; none on success.
    error: Option<String>,
    latency: Duration,
}

impl Sender {
    /// A sender over `db`; `secrets` opens the endpoints' signing secrets.
    pub fn new(
        db: DatabaseConnection,
        settings: WebhookSettings,
        secrets: signing::SecretBox,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.timeout_ms))
            .no_proxy()
            .dns_resolver(Arc::new(target::GuardedResolver {
                allow_private: settings.allow_private_targets,
            }))
            .build()?;
        Ok(Self {
            db,
            settings,
            secrets,
            client,
        })
    }

    /// Sends until the process ends: a pass whenever something rang, and every `poll_ms`.
    pub async fn run(self) {
        let poll = Duration::from_millis(self.settings.poll_ms.max(10));
        let mut failing = false;
        tokio::spawn(prune_every_hour(self.db.clone(), self.settings.keep_days));
        loop {
            match self.pass().await {
                Ok(sent) if sent > 0 => continue,
                Ok(_) => failing = false,
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "sending webhooks failed; trying again");
                    }
                    failing = true;
                }
            }
            tokio::select! {
                () = super::WAKE.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Takes the due deliveries and sends them; how many it sent.
    async fn pass(&self) -> Result<usize, DbErr> {
        self.read_queue().await?;
        let due = self.take_due(Utc::now()).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let endpoint_ids: Vec<i64> = due.iter().map(|d| d.webhook_id).collect();
        let endpoints: std::collections::HashMap<i64, webhook::Model> = webhook::Entity::find()
            .filter(crate::db::one_of(
                webhook::Column::Id,
                &endpoint_ids,
                self.db.get_database_backend(),
            ))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|endpoint| (endpoint.id, endpoint))
            .collect();
        let count = due.len();
        let attempts = due.into_iter().filter_map(|delivery| {
            let endpoint = endpoints.get(&delivery.webhook_id)?.clone();
            Some(async move {
                let outcome = self.attempt(&endpoint, &delivery).await;
                if let Err(error) = self.record(&endpoint, &delivery, outcome).await {
                    // The lease runs out and the delivery is sent again.
                    tracing::warn!(%error, delivery = delivery.id, "recording a webhook attempt failed");
                }
            })
        });
        futures_util::future::join_all(attempts).await;
        Ok(count)
    }

    /// Updates the queue gauges.
    async fn read_queue(&self) -> Result<(), DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT COUNT(*), MIN(created_at) FROM webhook_deliveries WHERE status = 'PENDING'",
            ))
            .await?;
        if let Some(row) = row {
            let count: i64 = row.try_get_by_index(0)?;
            let oldest: Option<DateTime<Utc>> = row.try_get_by_index(1).ok().flatten();
            METRICS.webhook_queue_depth.set(count);
            METRICS
                .webhook_oldest_pending_seconds
                .set(oldest.map_or(0, |at| (Utc::now() - at).num_seconds().max(0)));
        }
        Ok(())
    }

    /// Leases the oldest due delivery of each endpoint (up to `concurrency`) and returns them.
    async fn take_due(&self, now: DateTime<Utc>) -> Result<Vec<webhook_delivery::Model>, DbErr> {
        let backend = self.db.get_database_backend();
        let lease = now + chrono::Duration::seconds(self.settings.lease_secs as i64);
        let limit = self.settings.concurrency.max(1) as i64;
        let (p, lock) = match backend {
            DbBackend::Postgres => (["$1", "$2", "$3"], "FOR UPDATE OF d SKIP LOCKED"),
            _ => (["?", "?", "?"], ""),
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_until = {lease_p} WHERE id IN (\
               SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
               WHERE d.status = 'PENDING' AND d.next_attempt_at <= {now_p} \
               AND (d.lease_until IS NULL OR d.lease_until < {now_p}) AND w.is_active \
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
                 AND e.status = 'PENDING' AND e.id < d.id) \
               ORDER BY d.id LIMIT {limit_p} {lock}) \
             RETURNING *",
            lease_p = p[0],
            now_p = p[1],
            limit_p = p[2],
        );
        // SQLite numbers `?` by position: `now` is bound once per use.
        let values: Vec<sea_orm::Value> = match backend {
            DbBackend::Postgres => vec![lease.into(), now.into(), limit.into()],
            _ => vec![lease.into(), now.into(), now.into(), limit.into()],
        };
        let mut due = webhook_delivery::Entity::find()
            .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
            .all(&self.db)
            .await?;
        due.sort_by_key(|delivery| delivery.id);
        Ok(due)
    }

    /// One attempt to deliver `delivery` to `endpoint`.
    async fn attempt(
        &self,
        endpoint: &webhook::Model,
        delivery: &webhook_delivery::Model,
    ) -> Outcome {
        let started = std::time::Instant::now();
        let failed = |error: String| Outcome {
            status_code: None,
            error: Some(error),
            latency: started.elapsed(),
        };
        let url = match target::parse(&endpoint.url, self.settings.allow_private_targets) {
            Ok(url) => url,
            Err(refusal) => return failed(refusal),
        };
        // Names are checked by the resolver as the connection is made; addresses here.
        if let Err(refusal) = target::check_literal(&url, self.settings.allow_private_targets) {
            return failed(refusal);
        }
        let now = Utc::now();
        let mut secrets = Vec::new();
        match self.secrets.open(&endpoint.secret_ciphertext) {
            Some(secret) => secrets.push(secret),
            None => return failed(
                "the endpoint's signing secret cannot be read with this server's encryption key"
                    .into(),
            ),
        }
        if let (Some(previous), Some(until)) = (
            &endpoint.previous_secret_ciphertext,
            endpoint.previous_secret_expires_at,
        ) && until > now
            && let Some(secret) = self.secrets.open(previous)
        {
            secrets.push(secret);
        }
        let body = serde_json::to_vec(&delivery.payload).expect("JSON values serialize");
        let timestamp = now.timestamp();
        let signature = secrets
            .iter()
            .filter_map(|secret| signing::sign(secret, &delivery.message_id, timestamp, &body))
            .collect::<Vec<_>>()
            .join(" ");
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(error) => return failed(describe(error)),
        };
        let status = response.status();
        // Read a little of the answer (to show it), never all of it.
        let mut kept = Vec::new();
        while kept.len() < KEPT_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        kept.truncate(KEPT_RESPONSE_BYTES);
        Outcome {
            status_code: Some(i32::from(status.as_u16())),
            error: (!status.is_success()).then(|| {
                let text = String::from_utf8_lossy(&kept);
                let text: String = text.chars().take(200).collect();
                format!("HTTP {}: {}", status.as_u16(), text.trim())
            }),
            latency: started.elapsed(),
        }
    }

    /// Writes what `outcome` means for `delivery` and for its endpoint's health.
    async fn record(
        &self,
        endpoint: &webhook::Model,
        delivery: &webhook_delivery::Model,
        outcome: Outcome,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let attempts = delivery.attempts + 1;
        METRICS
            .webhook_delivery_duration
            .observe(outcome.latency.as_secs_f64());
        let schedule = &self.settings.retry_schedule_secs;
        let (status, next, label) = match &outcome.error {
            None => (WebhookDeliveryStatus::Delivered, None, "delivered"),
            Some(_) => match schedule.get(delivery.attempts.max(0) as usize) {
                Some(&wait) => (
                    WebhookDeliveryStatus::Pending,
                    Some(now + jittered(wait)),
                    "retrying",
                ),
                None => (WebhookDeliveryStatus::Failed, None, "failed"),
            },
        };
        METRICS.webhook_deliveries.with_label_values(&[label]).inc();
        tracing::info!(
            delivery = delivery.id,
            endpoint = endpoint.id,
            message_id = %delivery.message_id,
            attempt = attempts,
            status_code = outcome.status_code,
            latency_ms = outcome.latency.as_millis() as u64,
            error = outcome.error.as_deref(),
            outcome = label,
            "webhook attempt"
        );
        // The delivery's outcome and the endpoint's failure streak change together: a reader
        // never sees a delivered delivery beside a streak it ended.
        let txn = crate::db::begin_write(&self.db).await?;
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::Status, status.into())
            .col_expr(webhook_delivery::Column::Attempts, attempts.into())
            .col_expr(webhook_delivery::Column::NextAttemptAt, next.into())
            .col_expr(
                webhook_delivery::Column::LastStatusCode,
                outcome.status_code.into(),
            )
            .col_expr(
                webhook_delivery::Column::LastError,
                outcome.error.clone().into(),
            )
            .col_expr(webhook_delivery::Column::LastAttemptAt, Some(now).into())
            .col_expr(
                webhook_delivery::Column::LastLatencyMs,
                Some(outcome.latency.as_millis().min(i32::MAX as u128) as i32).into(),
            )
            .col_expr(
                webhook_delivery::Column::DeliveredAt,
                outcome.error.is_none().then_some(now).into(),
            )
            .col_expr(
                webhook_delivery::Column::LeaseUntil,
                Option::<DateTime<Utc>>::None.into(),
            )
            .filter(webhook_delivery::Column::Id.eq(delivery.id))
            .exec(&txn)
            .await?;
        if outcome.error.is_none() {
            webhook::Entity::update_many()
                .col_expr(
                    webhook::Column::FailingSince,
                    Option::<DateTime<Utc>>::None.into(),
                )
                .filter(webhook::Column::Id.eq(endpoint.id))
                .filter(webhook::Column::FailingSince.is_not_null())
                .exec(&txn)
                .await?;
            return txn.commit().await;
        }
        webhook::Entity::update_many()
            .col_expr(webhook::Column::FailingSince, Some(now).into())
            .filter(webhook::Column::Id.eq(endpoint.id))
            .filter(webhook::Column::FailingSince.is_null())
            .exec(&txn)
            .await?;
        let cutoff = now - chrono::Duration::seconds(self.settings.disable_after_secs as i64);
        let disabled = webhook::Entity::update_many()
            .col_expr(webhook::Column::IsActive, false.into())
            .col_expr(
                webhook::Column::DisabledReason,
                Some(
                    format!(
                        "every delivery attempt failed for {}; last: {}",
                        humantime::format_duration(Duration::from_secs(
                            self.settings.disable_after_secs
                        )),
                        outcome.error.as_deref().unwrap_or_default()
                    )
                    .chars()
                    .take(300)
                    .collect::<String>(),
                )
                .into(),
            )
            .filter(webhook::Column::Id.eq(endpoint.id))
            .filter(webhook::Column::IsActive.eq(true))
            .filter(webhook::Column::FailingSince.lte(cutoff))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        if disabled.rows_affected > 0 {
            tracing::warn!(
                endpoint = endpoint.id,
                "webhook endpoint disabled: it failed for too long"
            );
        }
        Ok(())
    }
}

/// `secs`, give or take a fifth, so endpoints that failed together do not retry together.
fn jittered(secs: u64) -> chrono::Duration {
    let millis = secs.saturating_mul(1000) as f64;
    let factor = 0.8 + fastrand::f64() * 0.4;
    chrono::Duration::milliseconds((millis * factor) as i64)
}

/// A failed request in words for the delivery log (never with the URL's query string).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text.chars().take(300).collect()
}
