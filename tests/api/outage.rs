//! A PostgreSQL of the test's own (`initdb` and `pg_ctl` on a free port), stopped and started
//! under the server: it answers honestly and fast while the database is gone, and recovers.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use dishpatch::{app::Application, config::DatabaseUrl, db, seed};
use serde_json::{Value, json};

/// A PostgreSQL server in a temporary directory, run as the `postgres` user.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl OwnPostgres {
    /// Initialises and starts one, or `None` after saying loudly why (in CI, a failure).
    pub fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .find(|bin| bin.join("initdb").exists())
            });
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but PostgreSQL's initdb is not installed"
            );
            eprintln!("SKIPPED outage test: no /usr/lib/postgresql/*/bin/initdb");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self { dir, bin, port };
        let data = server.data();
        let status = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(server.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        Self::as_postgres(&[
            &server.tool("initdb"),
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]);
        server.run_ctl("start");
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    /// Runs `args` as the `postgres` user (PostgreSQL refuses to run as root).
    fn as_postgres(args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .output()
            .expect("runuser runs");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn run_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        let mut args = vec![
            self.tool("pg_ctl"),
            "-D".into(),
            data,
            "-w".into(),
            "-l".into(),
            log,
        ];
        match action {
            "start" => args.extend(["-o".into(), options, "start".into()]),
            _ => args.extend(["-m".into(), "immediate".into(), "stop".into()]),
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::as_postgres(&args);
    }

    /// Stops it at once, as a crash or a fail-over would.
    pub fn stop(&self) {
        self.run_ctl("stop");
    }

    pub fn start_again(&self) {
        self.run_ctl("start");
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &self.tool("pg_ctl"),
                "-D",
                &data,
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

async fn post(address: &str, query: &str) -> (u16, Option<String>, Value, Duration) {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": query }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry, body, started.elapsed())
}

/// Test settings over `postgres`, its database migrated and seeded with the demo data; the
/// connection that seeded it.
async fn seeded(
    postgres: &OwnPostgres,
) -> (dishpatch::config::Settings, sea_orm::DatabaseConnection) {
    let mut settings = crate::helpers::test_settings(&postgres.url());
    settings.database_url = DatabaseUrl(postgres.url());
    let seeding = db::connect(&settings.database_url, 2)
        .await
        .expect("connect");
    db::migrate(&seeding).await.expect("migrate");
    seed::seed_demo(&seeding, 1).await.expect("seed");
    (settings, seeding)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_down_requests_answer_503_service_unavailable_and_recover() {
    let Some(postgres) = OwnPostgres::start() else {
        return;
    };
    let (settings, seeding) = seeded(&postgres).await;
    seeding.close().await.unwrap();
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let query = "{ restaurant(slug: \"trattoria-roma\") { name } }";
    let (status, _, body, _) = post(&address, query).await;
    assert_eq!(
        (status, &body["data"]["restaurant"]["name"]),
        (200, &json!("Trattoria Roma"))
    );

    postgres.stop();
    let started = Instant::now();
    let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "/readyz answered after {:?}",
        started.elapsed()
    );

    let (status, retry, body, took) = post(&address, query).await;
    assert_eq!(status, 503, "{body:#}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "{body:#}"
    );
    assert!(retry.is_some(), "Retry-After is sent");
    assert!(
        took < Duration::from_secs(9),
        "answered before the execution limit: {took:?}"
    );

    postgres.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body, _) = post(&address, query).await;
        if status == 200 {
            assert_eq!(body["data"]["restaurant"]["name"], "Trattoria Roma");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: {status} {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
}

const PLACE: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }";

/// Posts `query` with `variables` as `authorization`; the HTTP status and the body, or `None`
/// when the connection failed.
async fn post_as(
    address: &str,
    authorization: &str,
    query: &str,
    variables: Value,
) -> Option<(u16, Value)> {
    let response = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .header("authorization", authorization)
        .json(&json!({ "query": query, "variables": variables }))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

/// PostgreSQL restarts while customers order through one replica and the kitchen follows on
/// another: every order that committed reaches the kitchen exactly once (the replica's
/// listener misses the notifications sent while it reconnects; the log does not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_committed_around_a_postgres_restart_reaches_the_kitchen_once() {
    use futures_util::{SinkExt, StreamExt};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let Some(postgres) = OwnPostgres::start() else {
        return;
    };
    let (settings, seeding) = seeded(&postgres).await;
    let user_id = |email: &'static str| {
        let seeding = seeding.clone();
        async move {
            entities::user::Entity::find()
                .filter(entities::user::Column::Email.eq(email))
                .one(&seeding)
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let (owner, customer) = (
        user_id(seed::DEMO_OWNER).await,
        user_id(seed::DEMO_CUSTOMER).await,
    );
    let kitchen_app = Application::build(settings.clone()).await.expect("builds");
    let ordering_app = Application::build(settings).await.expect("builds");
    let now = chrono::Utc::now();
    let owner = format!(
        "Bearer {}",
        kitchen_app.tokens().issue(owner, None, None, now)
    );
    let customer = format!(
        "Bearer {}",
        ordering_app.tokens().issue(customer, None, None, now)
    );
    let kitchen = format!("127.0.0.1:{}", kitchen_app.port());
    let ordering = format!("http://127.0.0.1:{}", ordering_app.port());
    tokio::spawn(kitchen_app.run_until_stopped());
    tokio::spawn(ordering_app.run_until_stopped());

    let (restaurant, item) = crate::cli::roma_and_an_available_item(&ordering).await;

    let mut request = format!("ws://{kitchen}/graphql")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    socket
        .send(Message::text(
            json!({ "type": "connection_init", "payload": { "Authorization": owner } }).to_string(),
        ))
        .await
        .unwrap();
    socket
        .send(Message::text(
            json!({ "id": "k", "type": "subscribe", "payload": {
            "query": "subscription($r: ID!) { restaurantOrders(restaurantId: $r) { id status } }",
            "variables": { "r": restaurant } } })
            .to_string(),
        ))
        .await
        .unwrap();
    // The kitchen's socket collects every new order it hears of for 18 s: orders are placed
    // for the first 10, and anything still on its way has 8 s more.
    let until = tokio::time::Instant::now() + Duration::from_secs(18);
    let heard = tokio::spawn(async move {
        let mut placed = Vec::new();
        let mut errors = Vec::new();
        while let Ok(Some(message)) = tokio::time::timeout_at(until, socket.next()).await {
            let Ok(Message::Text(text)) = message else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            match message["type"].as_str() {
                Some("next") if message["payload"]["errors"].is_null() => {
                    let order = &message["payload"]["data"]["restaurantOrders"];
                    if order["status"] == "PLACED" {
                        placed.push(order["id"].as_str().unwrap().to_owned());
                    }
                }
                Some("next" | "error" | "complete") => errors.push(message),
                _ => {}
            }
        }
        (placed, errors)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let input = |n: u32| {
        json!({ "input": {
        "restaurantId": restaurant,
        "lines": [{ "menuItemId": item, "quantity": 1 }],
        "deliveryAddress": "Torstrasse 1, Berlin",
        "deliveryLocation": { "latitude": 52.53, "longitude": 13.40 },
        "idempotencyKey": format!("restart-{n}"),
    } })
    };
    let started = Instant::now();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut restarted = false;
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(10) {
        if !restarted && started.elapsed() > Duration::from_secs(2) {
            // Down for a moment, as in a fail-over, then back while orders keep coming.
            postgres.stop();
            tokio::time::sleep(Duration::from_millis(500)).await;
            postgres.start_again();
            restarted = true;
        }
        n += 1;
        match post_as(&ordering, &customer, PLACE, input(n)).await {
            Some((200, body)) if body["data"]["placeOrder"]["order"]["id"].is_string() => {
                acknowledged.push(
                    body["data"]["placeOrder"]["order"]["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            _ => refused += 1,
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(restarted);
    assert!(
        acknowledged.len() > 50,
        "orders were taken after the restart: {} of {n}",
        acknowledged.len()
    );

    let (placed, errors) = heard.await.unwrap();
    // Every order the database holds from this run, acknowledged or not (a commit whose answer
    // was lost to the outage counts too).
    let verify = db::connect(&DatabaseUrl(postgres.url()), 1)
        .await
        .expect("connect");
    let committed: Vec<String> = entities::order::Entity::find()
        .filter(entities::order::Column::IdempotencyKey.starts_with("restart-"))
        .all(&verify)
        .await
        .unwrap()
        .into_iter()
        .map(|order| {
            dishpatch::graphql::relay::GlobalId::encode(
                dishpatch::graphql::relay::NodeKind::Order,
                order.id,
            )
            .to_string()
        })
        .collect();
    assert!(
        errors.is_empty(),
        "the kitchen's stream did not end: {errors:?}"
    );
    for id in &acknowledged {
        assert!(committed.contains(id), "acknowledged and committed: {id}");
    }
    let mut missing: Vec<&String> = committed.iter().filter(|id| !placed.contains(id)).collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "{} of {} committed orders never reached the kitchen ({refused} refused during the outage): {missing:?}",
        missing.len(),
        committed.len()
    );
    let mut once = placed.clone();
    once.sort();
    once.dedup();
    assert_eq!(once.len(), placed.len(), "each order is announced once");
    assert_eq!(placed.len(), committed.len());
}
