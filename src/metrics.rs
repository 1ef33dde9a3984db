//! Prometheus metrics, served on `/metrics`: HTTP requests, GraphQL operations and errors,
//! SQL statements, DataLoader batches, the database pool, WebSockets and subscriptions,
//! webhook deliveries.
//!
//! One registry per process: every series describes the process, as Prometheus expects.

use std::{
    collections::HashSet,
    sync::{LazyLock, Mutex},
};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use sea_orm::DatabaseConnection;

/// Operation names kept as label values; further names count as `other`, so clients cannot
/// grow the series without bound.
const MAX_OPERATION_NAMES: usize = 200;

/// Latency buckets in seconds, from a cached lookup to a slow page.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Count buckets for statements per request and keys per batch.
const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 100.0, 250.0,
];

/// Every metric dishpatch exports.
pub struct Metrics {
    registry: Registry,
    /// The standard `process_*` series, without the `dishpatch_` prefix dashboards don't expect.
    process: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub graphql_operations: IntCounterVec,
    pub graphql_duration: HistogramVec,
    pub graphql_errors: IntCounterVec,
    pub sql_statements: IntCounter,
    pub sql_statements_per_request: Histogram,
    pub loader_batch_size: HistogramVec,
    pub db_pool_connections: IntGaugeVec,
    pub websocket_connections: IntGauge,
    pub active_subscriptions: IntGauge,
    pub webhook_deliveries: IntCounterVec,
    pub webhook_delivery_duration: Histogram,
    pub webhook_queue_depth: IntGauge,
    pub webhook_oldest_pending_seconds: IntGauge,
    operation_names: Mutex<HashSet<String>>,
}

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

fn histogram_vec(name: &str, help: &str, buckets: &[f64], labels: &[&str]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .expect("a valid histogram")
}

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new_custom(Some("dishpatch".into()), None).expect("a registry");
        let metrics = Self {
            http_requests: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by route, method and status.",
                ),
                &["route", "method", "status"],
            )
            .expect("a valid counter"),
            http_duration: histogram_vec(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by route.",
                LATENCY_BUCKETS,
                &["route"],
            ),
            graphql_operations: IntCounterVec::new(
                Opts::new(
                    "graphql_operations_total",
                    "GraphQL operations by name and type (query, mutation, subscription).",
                ),
                &["operation", "type"],
            )
            .expect("a valid counter"),
            graphql_duration: histogram_vec(
                "graphql_operation_duration_seconds",
                "Time to run a GraphQL operation (for subscriptions: to start it).",
                LATENCY_BUCKETS,
                &["operation", "type"],
            ),
            graphql_errors: IntCounterVec::new(
                Opts::new("graphql_errors_total", "GraphQL errors by extensions.code."),
                &["code"],
            )
            .expect("a valid counter"),
            sql_statements: IntCounter::new("sql_statements_total", "SQL statements executed.")
                .expect("a valid counter"),
            sql_statements_per_request: Histogram::with_opts(
                HistogramOpts::new(
                    "sql_statements_per_request",
                    "SQL statements one HTTP GraphQL request executed.",
                )
                .buckets(COUNT_BUCKETS.to_vec()),
            )
            .expect("a valid histogram"),
            loader_batch_size: histogram_vec(
                "dataloader_batch_size",
                "Keys per DataLoader batch, by loader.",
                COUNT_BUCKETS,
                &["loader"],
            ),
            db_pool_connections: IntGaugeVec::new(
                Opts::new(
                    "db_pool_connections",
                    "Database pool connections by state (in_use, idle).",
                ),
                &["state"],
            )
            .expect("a valid gauge"),
            websocket_connections: IntGauge::new(
                "websocket_connections",
                "Open GraphQL WebSocket connections.",
            )
            .expect("a valid gauge"),
            active_subscriptions: IntGauge::new(
                "graphql_active_subscriptions",
                "GraphQL operations streaming over WebSockets right now.",
            )
            .expect("a valid gauge"),
            webhook_deliveries: IntCounterVec::new(
                Opts::new(
                    "webhook_attempts_total",
                    "Webhook delivery attempts by outcome: delivered, retrying (failed, will \
                     retry), failed (failed for good).",
                ),
                &["outcome"],
            )
            .expect("a valid counter"),
            webhook_delivery_duration: Histogram::with_opts(
                HistogramOpts::new(
                    "webhook_attempt_duration_seconds",
                    "How long a webhook delivery attempt took, to the response or the failure.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .expect("a valid histogram"),
            webhook_queue_depth: IntGauge::new(
                "webhook_pending_deliveries",
                "Webhook deliveries waiting to be sent (due or retrying), as last read.",
            )
            .expect("a valid gauge"),
            webhook_oldest_pending_seconds: IntGauge::new(
                "webhook_oldest_pending_seconds",
                "Age of the oldest webhook delivery still waiting, as last read (0: none).",
            )
            .expect("a valid gauge"),
            operation_names: Mutex::new(HashSet::new()),
            registry,
            process: Registry::new(),
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 15] = [
            Box::new(metrics.http_requests.clone()),
            Box::new(metrics.http_duration.clone()),
            Box::new(metrics.graphql_operations.clone()),
            Box::new(metrics.graphql_duration.clone()),
            Box::new(metrics.graphql_errors.clone()),
            Box::new(metrics.sql_statements.clone()),
            Box::new(metrics.sql_statements_per_request.clone()),
            Box::new(metrics.loader_batch_size.clone()),
            Box::new(metrics.db_pool_connections.clone()),
            Box::new(metrics.websocket_connections.clone()),
            Box::new(metrics.active_subscriptions.clone()),
            Box::new(metrics.webhook_deliveries.clone()),
            Box::new(metrics.webhook_delivery_duration.clone()),
            Box::new(metrics.webhook_queue_depth.clone()),
            Box::new(metrics.webhook_oldest_pending_seconds.clone()),
        ];
        for collector in collectors {
            metrics.registry.register(collector).expect("unique names");
        }
        #[cfg(target_os = "linux")]
        metrics
            .process
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique names");
        metrics
    }

    /// The label for a client-chosen operation name: the name itself for the first
    /// `MAX_OPERATION_NAMES` names seen (when they look like GraphQL names), else `other`.
    pub fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name else {
            return "anonymous".into();
        };
        let valid =
            name.len() <= 100 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return "other".into();
        }
        let mut names = self.operation_names.lock().expect("unpoisoned");
        if names.contains(name) || names.len() < MAX_OPERATION_NAMES && names.insert(name.into()) {
            name.into()
        } else {
            "other".into()
        }
    }

    /// Everything, in the Prometheus text format, with the pool read now from `db`.
    pub fn render(&self, db: &DatabaseConnection) -> String {
        let (size, idle) = pool_usage(db);
        self.db_pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(size.saturating_sub(idle)));
        self.db_pool_connections
            .with_label_values(&["idle"])
            .set(i64::from(idle));
        let mut families = self.registry.gather();
        families.extend(self.process.gather());
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut text)
            .expect("encoding to memory cannot fail");
        String::from_utf8(text).expect("the text format is UTF-8")
    }
}

/// Connections open and idle in the pool of `db`.
fn pool_usage(db: &DatabaseConnection) -> (u32, u32) {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle() as u32)
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle() as u32)
        }
        _ => (0, 0),
    }
}

/// Holds one unit of a gauge for as long as it lives.
pub struct GaugeGuard(IntGauge);

impl GaugeGuard {
    /// Adds one to `gauge` until dropped.
    pub fn hold(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
