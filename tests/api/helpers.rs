//! `TestApp`: the real server on port 0 with a database of its own, on SQLite or PostgreSQL.

use std::sync::LazyLock;

use dishpatch::{
    app::Application,
    config::{DatabaseUrl, Settings},
    db, seed, telemetry,
};
use reqwest::header::HeaderMap;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static TRACING: LazyLock<()> = LazyLock::new(telemetry::init_for_tests);

/// Settings every test server starts from: port 0, `url`, and one signing key shared by all
/// instances (as replicas share theirs).
pub fn test_settings(url: &str) -> Settings {
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        database_url: DatabaseUrl(url.to_owned()),
        database_max_connections: Some(8),
        ..Settings::default()
    };
    settings.auth.signing_keys = vec![dishpatch::config::SigningKey {
        kid: "test".into(),
        secret: dishpatch::config::Secret::new("a-signing-key-for-the-tests-only-0123456789"),
    }];
    // Photos of a PostgreSQL test database go to a directory of its own, shared by its
    // replicas (SQLite keeps them beside its temporary file).
    if url.starts_with("postgres") {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        url.hash(&mut hasher);
        settings.media.dir =
            Some(std::env::temp_dir().join(format!("dishpatch-test-media-{:x}", hasher.finish())));
    }
    settings
}

/// The server under test.
pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub client: reqwest::Client,
    pub db: DatabaseConnection,
    pub tokens: std::sync::Arc<dishpatch::auth::tokens::AccessTokens>,
    _database: TestDatabase,
}

/// A GraphQL response: HTTP status, headers, body.
#[derive(Debug)]
pub struct GraphqlResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl GraphqlResponse {
    /// `data`, after asserting there are no errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {:#}",
            self.body
        );
        &self.body["data"]
    }

    /// The `extensions.code` of the first error, after asserting there is one.
    pub fn error_code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code: {:#}", self.body))
    }

    /// The message of the first error.
    pub fn error_message(&self) -> &str {
        self.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
    }

    /// How many SQL statements the server says the request executed.
    pub fn sql_statements(&self) -> u32 {
        self.headers["x-sql-statements"]
            .to_str()
            .expect("ascii header")
            .parse()
            .expect("a number")
    }
}

impl TestApp {
    /// A server over a fresh database holding the demo data at `scale`; `None` when the
    /// backend is not available here (PostgreSQL without `TEST_POSTGRES_URL`).
    pub async fn spawn(backend: Backend, scale: u32) -> Option<Self> {
        Self::spawn_with(backend, scale, |_| {}).await
    }

    /// Like `spawn`, with settings adjusted by `configure`.
    pub async fn spawn_with(
        backend: Backend,
        scale: u32,
        configure: impl FnOnce(&mut Settings),
    ) -> Option<Self> {
        LazyLock::force(&TRACING);
        let database = TestDatabase::create(backend).await?;
        let mut settings = test_settings(&database.url);
        configure(&mut settings);
        // Seed before the server starts so every test sees the same data.
        let seed_db = db::connect(&settings.database_url, 2)
            .await
            .expect("connect");
        db::migrate(&seed_db).await.expect("migrate");
        seed::seed_demo(&seed_db, scale).await.expect("seed");
        seed_db.close().await.expect("close");

        let app = Application::build(settings).await.expect("the app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let db = app.db().clone();
        let tokens = app.tokens().clone();
        tokio::spawn(app.run_until_stopped());
        Some(Self {
            address,
            database_url: database.url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client"),
            db,
            tokens,
            _database: database,
        })
    }

    /// A second server over the same database, as another replica would be.
    pub async fn another_instance(&self) -> (String, Application) {
        let app = Application::build(test_settings(&self.database_url))
            .await
            .expect("the second instance builds");
        (format!("http://127.0.0.1:{}", app.port()), app)
    }

    /// The id of the user with `email`.
    pub async fn user_id(&self, email: &str) -> i64 {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entities::user::Entity::find()
            .filter(entities::user::Column::Email.eq(email))
            .one(&self.db)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("a user {email}"))
            .id
    }

    /// `Bearer <access token>` for the user with `email` (full rights).
    pub async fn bearer(&self, email: &str) -> String {
        let id = self.user_id(email).await;
        format!(
            "Bearer {}",
            self.tokens.issue(id, None, None, chrono::Utc::now())
        )
    }

    /// POSTs `query` as whoever `authorization` names (anonymous when `None`).
    pub async fn graphql_as(
        &self,
        authorization: Option<&str>,
        query: &str,
        variables: Value,
    ) -> GraphqlResponse {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        Self::read(request.send().await.expect("the server answers")).await
    }

    /// POSTs `query` with `variables` to `/graphql`.
    pub async fn graphql(&self, query: &str, variables: Value) -> GraphqlResponse {
        self.post_json(&json!({ "query": query, "variables": variables }))
            .await
    }

    /// POSTs any JSON body to `/graphql`.
    pub async fn post_json(&self, body: &Value) -> GraphqlResponse {
        let response = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(body)
            .send()
            .await
            .expect("the server answers");
        Self::read(response).await
    }

    /// Reads a response whose body is JSON.
    pub async fn read(response: reqwest::Response) -> GraphqlResponse {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("a JSON body, got {status}: {text}"));
        GraphqlResponse {
            status,
            headers,
            body,
        }
    }

    /// The global ID of the restaurant with `slug`.
    pub async fn restaurant_id(&self, slug: &str) -> String {
        let response = self
            .graphql(
                "query($slug: String!) { restaurant(slug: $slug) { id } }",
                json!({ "slug": slug }),
            )
            .await;
        response.data()["restaurant"]["id"]
            .as_str()
            .expect("the restaurant exists")
            .to_owned()
    }
}

/// An Apollo persisted-query manifest listing the one operation `listed` (named `Listed`),
/// for allow-list mode. The file lives as long as the value.
pub fn allow_list_manifest(listed: &str) -> tempfile::NamedTempFile {
    use std::io::Write as _;
    let mut manifest = tempfile::NamedTempFile::new().expect("a temporary file");
    let operations = json!([{
        "id": dishpatch::persisted::sha256_hex(listed), "name": "Listed", "type": "query", "body": listed
    }]);
    write!(
        manifest,
        "{}",
        json!({ "format": "apollo-persisted-query-manifest", "version": 1, "operations": operations })
    )
    .expect("the manifest is written");
    manifest
}

/// A database that exists for one test: a temporary SQLite file, or a PostgreSQL database
/// dropped when the test ends.
pub struct TestDatabase {
    pub url: String,
    backend: Backend,
    name: String,
    admin_url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
                Some(Self {
                    url,
                    backend,
                    name: String::new(),
                    admin_url: String::new(),
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url()?;
                let name = format!("dishpatch_test_{}", uuid_simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("TEST_POSTGRES_URL accepts connections");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the test database");
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(base, _)| base);
                Some(Self {
                    url: format!("{base}/{name}"),
                    backend,
                    name,
                    admin_url,
                    _dir: None,
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime; a thread with its own runtime may block.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(async {
                    let admin = Database::connect(&admin_url).await?;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await?;
                    admin.close().await
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// Where PostgreSQL tests run without `TEST_POSTGRES_URL`: the local server, if one answers.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// `TEST_POSTGRES_URL`, else the local PostgreSQL when one answers on the default address,
/// else `None` after saying loudly why PostgreSQL tests are skipped. In CI a missing server
/// is a failure, so a misconfigured pipeline cannot pass by skipping.
fn postgres_admin_url() -> Option<String> {
    static URL: LazyLock<Option<String>> =
        LazyLock::new(|| match std::env::var("TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(url),
            _ => std::net::TcpStream::connect_timeout(
                &"127.0.0.1:5432".parse().expect("an address"),
                std::time::Duration::from_secs(1),
            )
            .is_ok()
            .then(|| DEFAULT_POSTGRES_URL.to_owned()),
        });
    if URL.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but no PostgreSQL answers: PostgreSQL tests must run in CI"
        );
        eprintln!(
            "SKIPPED on PostgreSQL: TEST_POSTGRES_URL is not set and nothing answers on \
             127.0.0.1:5432 (e.g. TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test)"
        );
    }
    URL.clone()
}

fn uuid_simple() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}_{nanos}", std::process::id())
}

/// Defines a test that runs once on SQLite and once on PostgreSQL, each against a fresh
/// server seeded with the demo data (at `scale = N` when given).
macro_rules! db_test {
    ($(#[doc = $doc:literal])* setup = $setup:path, async fn $name:ident($app:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let Some($app) = $setup($crate::helpers::Backend::Sqlite).await else {
                    return;
                };
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($app) = $setup($crate::helpers::Backend::Postgres).await else {
                    return;
                };
                $body
            }
        }
    };
    ($(#[doc = $doc:literal])* async fn $name:ident($app:ident) $body:block) => {
        db_test!($(#[doc = $doc])* scale = 1, async fn $name($app) $body);
    };
    ($(#[doc = $doc:literal])* scale = $scale:literal, async fn $name:ident($app:ident) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::helpers::TestApp::spawn(
                    $crate::helpers::Backend::Sqlite, $scale,
                )
                .await
                .expect("SQLite is always available");
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($app) = $crate::helpers::TestApp::spawn(
                    $crate::helpers::Backend::Postgres, $scale,
                )
                .await
                else {
                    return;
                };
                $body
            }
        }
    };
}
pub(crate) use db_test;

/// The database id in a global ID (`"UmVzdGF1cmFudDox"` -> 1).
pub fn decode_id(id: &Value) -> i64 {
    let id = id.as_str().unwrap_or_else(|| panic!("a global ID: {id}"));
    dishpatch::graphql::relay::GlobalId::decode(&async_graphql::ID(id.to_owned()))
        .unwrap_or_else(|error| panic!("`{id}` is no global ID: {error:?}"))
        .id
}

/// The database ids of the nodes of a connection, in order.
pub fn node_ids(connection: &Value) -> Vec<i64> {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("a connection: {connection}"))
        .iter()
        .map(|edge| decode_id(&edge["node"]["id"]))
        .collect()
}

/// The node of the edge of `connection` whose node has the ID `id`.
pub fn node_with_id(connection: &Value, id: &Value) -> Value {
    connection["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("a connection: {connection}"))
        .iter()
        .find(|edge| &edge["node"]["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {connection}"))["node"]
        .clone()
}
