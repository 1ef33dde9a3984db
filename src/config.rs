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
    /// Upper bound of the database connection pool; unset, 4 on SQLite and 24 on PostgreSQL
    /// (see `pool_size`).
    pub database_max_connections: Option<u32>,
    /// Apply pending migrations when the server starts.
    pub migrate_on_start: bool,
    /// Seed the demo data set when the database has no restaurants.
    pub demo: bool,
    /// `pretty` for a terminal, `json` for log collectors.
    pub log_format: LogFormat,
    /// A `tracing` env-filter directive; `RUST_LOG` wins when set.
    pub log_filter: String,
    /// `development` or `production`; production turns GraphiQL, introspection and field
    /// suggestions off unless they are switched on explicitly below.
    pub environment: Environment,
    /// Serve GraphiQL to browsers on `GET /graphql` (default: outside production only).
    pub graphiql: Option<bool>,
    /// Answer introspection queries (default: outside production only).
    pub introspection: Option<bool>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Most operations in one batched request; 0 turns batching off.
    pub max_batch_size: usize,
    /// Origins browsers may call the API from, e.g. `https://app.example.com`; none by
    /// default, so only same-origin pages can read responses.
    pub cors_allowed_origins: Vec<String>,
    /// Request headers browsers may send cross-origin (with `cors_allowed_origins`).
    pub cors_allowed_headers: Vec<String>,
    /// `redis://host:port/db`: shares rate-limit budgets and persisted queries between
    /// replicas. Without it both live in each process's memory.
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key dishpatch writes.
    pub redis_key_prefix: String,
    /// What one GraphQL request may ask for.
    pub limits: QueryLimits,
    /// Cost budgets per token, user and address.
    pub rate_limit: RateLimitSettings,
    /// Automatic persisted queries and the allow-list.
    pub persisted_queries: PersistedQuerySettings,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>` (Prometheus's
    /// `authorization` scrape setting); when not, anyone who reaches the port can read it.
    pub metrics_token: Option<Secret>,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Seconds between SIGTERM and closing the listener, during which the server still
    /// serves but `/readyz` says 503, so a load balancer stops sending before connections are
    /// refused. Ctrl-C does not wait.
    pub shutdown_drain_secs: u64,
    /// Logins, sessions and tokens.
    pub auth: AuthSettings,
    /// Signed event notifications to integrators' endpoints.
    pub webhooks: WebhookSettings,
    /// Photo uploads and where their files are kept.
    pub media: MediaSettings,
}

/// Photo uploads (GraphQL multipart requests) and their storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// Directory the files are kept in. Unset: beside the SQLite file (`<file>.media`), or
    /// `./media` on PostgreSQL (replicas then need a shared directory).
    pub dir: Option<std::path::PathBuf>,
    /// Largest file accepted, in bytes.
    pub max_file_bytes: usize,
    /// Most files in one request.
    pub max_files: usize,
    /// Most pixels (width times height) an image may have; checked from its header before
    /// anything is decoded.
    pub max_pixels: u64,
    /// Keep the files in S3-compatible object storage instead of `dir` (what replicas on
    /// several machines need). The server still serves them on `/media`.
    pub s3: Option<S3Settings>,
    /// Where clients fetch photos from, when not from this server's `/media/`: a CDN in front
    /// of the bucket or of `/media`, e.g. `https://cdn.example.com/photos`. A photo's URL is
    /// this, a slash, and its file name (what `/media/` serves it as).
    pub public_url: Option<String>,
}

/// An S3-compatible bucket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    /// The bucket, which must exist.
    pub bucket: String,
    /// The service's URL for anything but AWS itself (`MinIO`, R2, …); path-style requests.
    pub endpoint: Option<String>,
    /// Region (default `us-east-1`).
    #[serde(default = "default_region")]
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Allow a plain-`http` endpoint (local servers only).
    #[serde(default)]
    pub allow_http: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}

impl Default for MediaSettings {
    fn default() -> Self {
        Self {
            dir: None,
            max_file_bytes: 10 * 1024 * 1024,
            max_files: 4,
            max_pixels: 40_000_000,
            s3: None,
            public_url: None,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            database_url: DatabaseUrl("sqlite://dishpatch.db?mode=rwc".into()),
            database_max_connections: None,
            migrate_on_start: true,
            demo: false,
            log_format: LogFormat::Pretty,
            log_filter: "info,sqlx=warn,sea_orm=warn".into(),
            environment: Environment::Development,
            graphiql: None,
            introspection: None,
            max_body_bytes: 1 << 20,
            max_batch_size: 10,
            cors_allowed_origins: Vec::new(),
            cors_allowed_headers: DEFAULT_CORS_HEADERS.iter().map(|&h| h.to_owned()).collect(),
            redis_url: None,
            redis_key_prefix: "dishpatch:".into(),
            limits: QueryLimits::default(),
            rate_limit: RateLimitSettings::default(),
            persisted_queries: PersistedQuerySettings::default(),
            metrics_token: None,
            shutdown_timeout_secs: 30,
            shutdown_drain_secs: 2,
            auth: AuthSettings::default(),
            webhooks: WebhookSettings::default(),
            media: MediaSettings::default(),
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
        // `DISHPATCH_AUTH__PUBLIC_URL` reaches `auth.public_url`. The signing keys are a list
        // of tables, which an environment variable carries as JSON (below).
        figment = figment.merge(
            Env::prefixed("DISHPATCH_")
                .split("__")
                .filter(|key| key.as_str() != SIGNING_KEYS_KEY),
        );
        if let Ok(json) = std::env::var(SIGNING_KEYS_ENV) {
            let keys: Vec<SigningKey> = serde_json::from_str(&json).map_err(|error| {
                Box::new(figment::Error::from(format!(
                    "{SIGNING_KEYS_ENV} must be JSON like \
                     [{{\"kid\": \"2026-12\", \"secret\": \"at least 32 bytes\"}}]: {error}"
                )))
            })?;
            figment = figment.merge(Serialized::default(SIGNING_KEYS_KEY, keys));
        }
        figment.extract().map_err(Box::new)
    }

    /// Whether GraphiQL is served.
    pub fn graphiql_enabled(&self) -> bool {
        self.graphiql
            .unwrap_or(self.environment != Environment::Production)
    }

    /// Whether introspection queries are answered.
    pub fn introspection_enabled(&self) -> bool {
        self.introspection
            .unwrap_or(self.environment != Environment::Production)
    }
}

/// The environment variable that carries `auth.signing_keys`, as JSON.
const SIGNING_KEYS_ENV: &str = "DISHPATCH_AUTH__SIGNING_KEYS";
const SIGNING_KEYS_KEY: &str = "auth.signing_keys";

/// Request headers allowed cross-origin by default: what GraphQL clients send, including
/// Apollo Client's client-awareness headers and the preflight-forcing CSRF headers.
pub const DEFAULT_CORS_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "accept",
    "x-request-id",
    "graphql-require-preflight",
    "apollo-require-preflight",
    "apollographql-client-name",
    "apollographql-client-version",
];

/// Where the server runs; production hides what helps only developers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

/// What one GraphQL request may ask for. The defaults pass every query the product and its
/// benchmark send, with room to spare.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryLimits {
    /// Deepest selection, counting through fragments.
    pub max_depth: usize,
    /// Highest complexity: each field costs 1 plus its selection, a connection field costs
    /// its page size (`first`/`last`) times its selection.
    pub max_complexity: usize,
    /// Most aliased fields in one document.
    pub max_aliases: usize,
    /// Longest document, in bytes.
    pub max_document_bytes: usize,
    /// Most lexical tokens in one document.
    pub max_tokens: usize,
    /// Most directives on one field or fragment.
    pub max_directives: usize,
    /// Longest a request may run, in milliseconds; 0 means no limit.
    pub execution_timeout_ms: u64,
    /// HTTP GraphQL requests executing at once; more wait their turn. Bounds the memory that
    /// large responses take under load (0: no limit). Shared out evenly between the HTTP
    /// workers, so that every core has requests to run.
    pub max_concurrent_requests: usize,
    /// Total cost (complexity) of the queries and mutations executing at once, over HTTP and
    /// WebSocket; one that would go over waits its turn. Bounds the memory large responses
    /// take under load (0: no limit). Shared out evenly between the HTTP workers like
    /// `max_concurrent_requests`: one costing more than a worker's share runs alone on its
    /// worker, one costing more than all of it runs alone.
    pub max_concurrent_cost: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            max_depth: 16,
            max_complexity: 25_000,
            max_aliases: 30,
            max_document_bytes: 32 * 1024,
            max_tokens: 2_000,
            max_directives: 4,
            execution_timeout_ms: 10_000,
            max_concurrent_requests: 16,
            max_concurrent_cost: 85_000,
        }
    }
}

/// Budgets of query cost (the complexity of each request) per fixed window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Enforce the budgets; cost is reported either way.
    pub enabled: bool,
    /// Length of a window in seconds; budgets refill at its end.
    pub window_secs: u64,
    /// Points per window for each address without a credential.
    pub anonymous_points: u64,
    /// Points per window for each signed-in user.
    pub user_points: u64,
    /// Points per window for each API token.
    pub token_points: u64,
    /// Take the client address from the last `X-Forwarded-For` entry; only behind exactly one
    /// proxy that appends the address it sees.
    pub trust_forwarded_for: bool,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 60,
            anonymous_points: 50_000,
            user_points: 200_000,
            token_points: 200_000,
            trust_forwarded_for: false,
        }
    }
}

/// Automatic persisted queries (Apollo's protocol) and the allow-list mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PersistedQuerySettings {
    /// Accept `extensions.persistedQuery` hashes and register new queries.
    pub enabled: bool,
    /// Queries kept in memory (least recently used go first).
    pub cache_size: usize,
    /// How long a registered query stays in Redis, in seconds.
    pub ttl_secs: u64,
    /// An Apollo persisted-query manifest (JSON). When set, only its operations run, and
    /// nothing new can be registered.
    pub allow_list: Option<std::path::PathBuf>,
}

impl Default for PersistedQuerySettings {
    fn default() -> Self {
        Self {
            enabled: true,
            cache_size: 1_000,
            ttl_secs: 24 * 3600,
            allow_list: None,
        }
    }
}

/// Webhooks: who may be sent to, and how deliveries are sent and retried.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Send pending deliveries from this process. Events are recorded either way; a replica
    /// that does not send leaves its share to the others.
    pub send: bool,
    /// Allow endpoints on loopback, private, link-local and other non-public addresses (and
    /// plain `http`). Off in production: webhooks would otherwise reach into the servers'
    /// own network. For tests and private deployments.
    pub allow_private_targets: bool,
    /// Encrypts the endpoints' signing secrets at rest (any string of 32 bytes or more).
    /// Unset: derived from the first `auth.signing_keys` entry (or the key kept beside the
    /// SQLite file), so rotating that key away makes stored secrets unreadable; set this on
    /// deployments that rotate their signing keys.
    pub encryption_key: Option<Secret>,
    /// Deliveries sent at once by this process.
    pub concurrency: usize,
    /// Milliseconds to connect to an endpoint.
    pub connect_timeout_ms: u64,
    /// Milliseconds an attempt may take in all (connect, send, response head and body).
    pub timeout_ms: u64,
    /// Seconds to wait before each retry after a failed attempt; when they are used up the
    /// delivery is failed. Each wait is jittered by up to a fifth either way.
    pub retry_schedule_secs: Vec<u64>,
    /// An endpoint whose attempts have all failed for this many seconds is disabled.
    pub disable_after_secs: u64,
    /// Seconds a process holds a delivery it took; if it dies, another takes the delivery
    /// after this.
    pub lease_secs: u64,
    /// Milliseconds between looks for due deliveries when nothing rang.
    pub poll_ms: u64,
    /// Days a sent or failed delivery stays (in `WebhookEndpoint.deliveries`, and for
    /// `redeliverWebhook`); older ones are deleted, hourly, by the processes that send.
    /// 0 keeps them forever.
    pub keep_days: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            send: true,
            allow_private_targets: false,
            encryption_key: None,
            concurrency: 16,
            connect_timeout_ms: 5_000,
            timeout_ms: 15_000,
            // Standard Webhooks' and Svix's schedule, stretched to about three days:
            // 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 24 h (66 h after the first try).
            retry_schedule_secs: vec![5, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 50_400, 86_400],
            disable_after_secs: 5 * 24 * 3600,
            lease_secs: 60,
            poll_ms: 1_000,
            keep_days: 30,
        }
    }
}

/// Logins, sessions and tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Keys that sign dishpatch's access tokens (HS256). The first signs; all verify, so a new
    /// key can be put first while tokens signed by the old one run out. Without any, a random
    /// key is made at start-up and tokens do not survive a restart.
    pub signing_keys: Vec<SigningKey>,
    /// Lifetime of an access token.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token (each use replaces it).
    pub refresh_token_ttl_secs: u64,
    /// Where browsers reach this server, e.g. `https://api.example.com`; OAuth callbacks are
    /// built from it. Defaults to `http://` + the listen address.
    pub public_url: Option<String>,
    /// Origins `redirect_to` may point at after a login, e.g. `https://app.example.com`.
    pub frontend_origins: Vec<String>,
    /// OAuth 2.0 / OpenID providers by name, used in `/auth/{name}/login`.
    pub providers: std::collections::BTreeMap<String, ProviderSettings>,
    /// Accept bearer JWTs of an outside OpenID provider (resource-server mode).
    pub resource_server: Option<ResourceServerSettings>,
    /// Clock difference tolerated when checking outside tokens' expiry, in seconds.
    pub clock_skew_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            signing_keys: Vec::new(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            public_url: None,
            frontend_origins: Vec::new(),
            providers: std::collections::BTreeMap::new(),
            resource_server: None,
            clock_skew_secs: 30,
        }
    }
}

/// A key that signs access tokens, named by its `kid`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    pub kid: String,
    /// At least 32 bytes of secret.
    pub secret: Secret,
}

/// An OAuth 2.0 provider, found by OpenID discovery from `issuer` or by explicit endpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// OpenID issuer URL; its discovery document gives the endpoints and the JWKS.
    pub issuer: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    /// Scopes to ask for; `openid email profile` when empty and an issuer is set.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// An outside OpenID provider whose access tokens are accepted as bearer tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceServerSettings {
    /// The `iss` of accepted tokens; also where discovery finds the JWKS.
    pub issuer: String,
    /// The `aud` accepted tokens must carry.
    pub audience: String,
    /// JWKS URL when it is not the one discovery names.
    pub jwks_url: Option<String>,
    /// Name under which subjects are linked to users (`identities.provider`).
    #[serde(default = "default_external_provider")]
    pub provider_name: String,
}

fn default_external_provider() -> String {
    "external".into()
}

/// A secret value: usable in code, redacted in `Debug`, never logged.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
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

impl Settings {
    /// The pool size: as configured, else by backend. On both, a request runs sibling loaders'
    /// statements side by side, and sqlx hands a used connection back from a task of its own, which
    /// waits its turn on a busy worker: with fewer connections than requests in flight, requests
    /// wait for one while the database has nothing to do. PostgreSQL: 24, half as many again as the
    /// 16 requests that execute at once by default (with 16 the cores sat 12% idle in the
    /// benchmark's nested query at first 10; 2-4% with 24, and 8-11% more requests/s). SQLite: 16
    /// (with 4, one restaurant's menu and the nested query at first 10 ran some 15% fewer
    /// requests/s). Each SQLite connection is a thread with its own page cache (at most 2 MB each,
    /// SQLite's default); writers take turns before SQLite's lock (`db::begin_write`), so a larger
    /// pool does not make writes wait in SQLite's busy handler.
    pub fn pool_size(&self) -> u32 {
        self.database_max_connections
            .unwrap_or(if self.database_url.scheme() == "sqlite" {
                16
            } else {
                24
            })
    }
}

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
    fn secrets_are_redacted_in_debug_output() {
        let settings = SigningKey {
            kid: "k1".into(),
            secret: Secret::new("super-secret-signing-key"),
        };
        assert!(!format!("{settings:?}").contains("super-secret"));
    }

    #[test]
    fn pool_size_follows_the_backend_unless_configured() {
        let mut settings = Settings {
            database_url: DatabaseUrl("sqlite://dishpatch.db?mode=rwc".into()),
            ..Settings::default()
        };
        assert_eq!(settings.pool_size(), 16);
        settings.database_url = DatabaseUrl("postgres://app@db/dishpatch".into());
        assert_eq!(settings.pool_size(), 24);
        settings.database_max_connections = Some(40);
        assert_eq!(settings.pool_size(), 40);
    }

    #[test]
    fn database_url_debug_hides_credentials() {
        let url = DatabaseUrl("postgres://app:hunter2@db/dishpatch".into());
        assert_eq!(format!("{url:?}"), "postgres://[redacted]");
    }
}
