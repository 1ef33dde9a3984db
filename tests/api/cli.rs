//! The `dishpatch` binary as people run it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::{Value, json};

fn dishpatch() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dishpatch"));
    command
        .env_remove("RUST_LOG")
        .env("DISHPATCH_LOG_FILTER", "info");
    command
}

/// Kills the server when a test fails half-way.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[tokio::test]
async fn serve_demo_answers_the_nested_query_logs_json_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("demo.db").display());
    let serving = Serving::start(&["--demo", "--database-url", &url], &[]);
    let address = serving.address.clone();

    let client = reqwest::Client::new();
    let response = client
        .post(format!("{address}/graphql"))
        .header("x-request-id", "cli-test-1")
        .json(&json!({
            "operationName": "Nested",
            "query": "query Nested { restaurants(first: 10) { edges { node { name menu { items { name price { amount } } } reviews(first: 3) { edges { node { rating author { displayName } } } } } } } }",
        }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let edges = body["data"]["restaurants"]["edges"]
        .as_array()
        .expect("restaurants");
    assert_eq!(edges.len(), 10);
    assert!(
        edges
            .iter()
            .all(|e| !e["node"]["menu"]["items"].as_array().unwrap().is_empty())
    );
    assert!(
        edges
            .iter()
            .any(|e| e["node"]["reviews"]["edges"][0]["node"]["author"]["displayName"].is_string())
    );

    // The demo's first restaurant has photos, drawn at seed time and served from beside the
    // database file.
    let photos: Value = client
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": "{ restaurant(slug: \"trattoria-roma\") { logo { url alt } cover { width } menu { items { image { url(width: 480) } } } } }" }))
        .send().await.unwrap().json().await.unwrap();
    let roma = &photos["data"]["restaurant"];
    assert_eq!(roma["logo"]["alt"], "Trattoria Roma", "{photos}");
    assert_eq!(roma["cover"]["width"], 1200);
    let shown = roma["menu"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["image"].is_object())
        .count();
    assert_eq!(shown, 8, "{photos}");
    let served = client
        .get(format!(
            "{address}{}",
            roma["logo"]["url"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    assert!(dir.path().join("demo.db.media").is_dir());

    // The printed demo header works as it is, and a tampered copy is refused.
    let authorization = serving.demo_authorization("customer");
    let viewer = |authorization: String| {
        client
            .post(format!("{address}/graphql"))
            .header("authorization", authorization)
            .json(&json!({ "query": "{ viewer { displayName email } }" }))
            .send()
    };
    let response = viewer(authorization.clone()).await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["viewer"]["displayName"], "Casey Customer");
    assert_eq!(body["data"]["viewer"]["email"], "customer@dishpatch.test");
    let mut tampered = authorization.clone();
    tampered.insert(tampered.len() - 4, 'A');
    let refused = viewer(tampered).await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");

    serving.signal("TERM");
    let (exit, logs) = serving.exit().await;
    assert!(exit.success(), "graceful shutdown exits cleanly: {exit:?}");

    let secret_part = &authorization[authorization.len() - 20..];
    assert!(
        logs.iter()
            .all(|line| !line.to_string().contains(secret_part)),
        "no token appears in the logs"
    );
    let request_log = logs
        .iter()
        .find(|line| line["span"]["request_id"] == "cli-test-1")
        .unwrap_or_else(|| panic!("a log line in the request's span: {logs:#?}"));
    assert_eq!(request_log["span"]["graphql.operation"], "Nested");
}

#[test]
fn migrate_up_down_and_status_manage_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
    let run = |args: &[&str]| {
        let output = dishpatch()
            .args(args)
            .args(["--database-url", &url])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let names: Vec<String> = <migration::Migrator as migration::MigratorTrait>::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let states = |status: &str| -> Vec<(String, String)> {
        status
            .lines()
            .filter_map(|line| line.split_once("  "))
            .map(|(state, name)| (state.trim().to_owned(), name.trim().to_owned()))
            .collect()
    };
    let expect = |applied: usize| -> Vec<(String, String)> {
        names
            .iter()
            .enumerate()
            .map(|(n, name)| {
                let state = if n < applied { "applied" } else { "pending" };
                (state.to_owned(), name.clone())
            })
            .collect()
    };
    assert!(names.len() >= 4);
    assert_eq!(states(&run(&["migrate", "status"])), expect(0));
    run(&["migrate", "up"]);
    assert_eq!(states(&run(&["migrate", "status"])), expect(names.len()));
    // Down undoes the newest migration only, each time: every one has a working `down`.
    for applied in (0..names.len()).rev() {
        run(&["migrate", "down"]);
        assert_eq!(states(&run(&["migrate", "status"])), expect(applied));
    }
}

#[test]
fn seed_fills_an_empty_database_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display());
    let first = dishpatch()
        .args(["seed", "--demo", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let summary = String::from_utf8(first.stdout).unwrap();
    assert!(summary.contains("200 users, 20 restaurants"), "{summary}");
    assert!(summary.contains("10 photos"), "{summary}");
    let second = dishpatch()
        .args(["seed", "--demo", "--database-url", &url])
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already has restaurants"));
}

#[test]
fn token_prints_a_scoped_token_signed_with_the_configured_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let seeded = dishpatch()
        .args(["seed", "--demo", "--database-url", &url])
        .output()
        .unwrap();
    assert!(seeded.status.success());

    let config = dir.path().join("dishpatch.toml");
    let secret = "a-signing-secret-for-the-cli-test-0123456789";
    std::fs::write(
        &config,
        format!("[[auth.signing_keys]]\nkid = \"k1\"\nsecret = \"{secret}\"\n"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        dishpatch()
            .args([
                "--config",
                config.to_str().unwrap(),
                "--database-url",
                &url,
                "token",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let output = run(&[
        "--user",
        "customer@dishpatch.test",
        "--scopes",
        "orders:read",
        "--ttl",
        "10m",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(!token.contains(secret));

    let settings = dishpatch::config::AuthSettings {
        signing_keys: vec![dishpatch::config::SigningKey {
            kid: "k1".into(),
            secret: dishpatch::config::Secret::new(secret),
        }],
        ..Default::default()
    };
    let claims = dishpatch::auth::tokens::AccessTokens::from_settings(&settings)
        .unwrap()
        .verify(&token)
        .expect("the token verifies with the configured key");
    assert_eq!(claims.scope.as_deref(), Some("orders:read"));
    let lifetime = claims.exp - chrono::Utc::now().timestamp();
    assert!((590..=600).contains(&lifetime), "{lifetime}");

    let bad_scope = run(&[
        "--user",
        "customer@dishpatch.test",
        "--scopes",
        "everything",
    ]);
    assert!(!bad_scope.status.success());
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("unknown scope"));
    let nobody = run(&["--user", "nobody@dishpatch.test"]);
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("no user"));
}

/// A `dishpatch serve` child process with its JSON logs read line by line.
struct Serving {
    server: Server,
    address: String,
    logs: mpsc::Receiver<Value>,
    /// What the server prints on stderr (the demo `Authorization` headers, by role).
    stderr: mpsc::Receiver<String>,
    seen: std::sync::Mutex<Vec<String>>,
}

impl Serving {
    /// Starts `serve` with `args` (plus JSON logs on port 0), and waits until it listens.
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = dishpatch()
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (stderr_tx, stderr) = mpsc::channel::<String>();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if stderr_tx.send(line).is_err() {
                    return;
                }
            }
        });
        let (logs_tx, logs) = mpsc::channel::<Value>();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let parsed = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("a JSON log line: {line}"));
                if logs_tx.send(parsed).is_err() {
                    return;
                }
            }
        });
        let mut early = Vec::new();
        let address = loop {
            let line = logs
                .recv_timeout(Duration::from_mins(1))
                .unwrap_or_else(|_| panic!("the server starts: {early:#?}"));
            if let Some(address) = line["address"].as_str() {
                break address.to_owned();
            }
            early.push(line);
        };
        let (replay_tx, replay) = mpsc::channel();
        for line in early {
            replay_tx.send(line).unwrap();
        }
        std::thread::spawn(move || {
            for line in &logs {
                if replay_tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self {
            server: Server(child),
            address,
            logs: replay,
            stderr,
            seen: std::sync::Mutex::default(),
        }
    }

    /// The demo header printed for `role` (e.g. `customer`), in whatever order they come.
    fn demo_authorization(&self, role: &str) -> String {
        let mut seen = self.seen.lock().unwrap();
        loop {
            if let Some(line) = seen.iter().find(|line| line.trim_start().starts_with(role)) {
                let header: Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
                return header["Authorization"].as_str().unwrap().to_owned();
            }
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(10))
                .expect("demo headers are printed");
            seen.push(line);
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.server.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, within 30 s.
    async fn exit(mut self) -> (std::process::ExitStatus, Vec<Value>) {
        let status = tokio::task::spawn_blocking(move || {
            for _ in 0..300 {
                if let Some(status) = self.server.0.try_wait().unwrap() {
                    return (status, self);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!("the server did not exit within 30 s");
        })
        .await
        .unwrap();
        let logs = status.1.logs.try_iter().collect();
        (status.0, logs)
    }
}

/// Trattoria Roma's global ID and one of its available items' (the demo data's).
pub(crate) async fn roma_and_an_available_item(address: &str) -> (String, String) {
    let menu: Value = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": "{ restaurant(slug: \"trattoria-roma\") { id menu { items { id available } } } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let restaurant = menu["data"]["restaurant"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let item = menu["data"]["restaurant"]["menu"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["available"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (restaurant, item)
}

async fn viewer_name(address: &str, authorization: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .header("authorization", authorization)
        .json(&json!({ "query": "{ viewer { displayName } }" }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn demo_tokens_and_cli_tokens_survive_a_restart_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let first = Serving::start(&["--demo", "--database-url", &url], &[]);
    let pasted = first.demo_authorization("customer");
    assert_eq!(viewer_name(&first.address, &pasted).await.0, 200);
    first.signal("TERM");
    let (status, _) = first.exit().await;
    assert!(status.success());

    // The key was kept beside the database, readable by its owner only.
    let key_file = dir.path().join("demo.db.signing-key");
    let permissions = std::fs::metadata(&key_file).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&permissions) & 0o777,
        0o600
    );

    let token = dishpatch()
        .args([
            "--database-url",
            &url,
            "token",
            "--user",
            "owner@dishpatch.test",
        ])
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let minted = format!("Bearer {}", String::from_utf8(token.stdout).unwrap().trim());

    let second = Serving::start(&["--demo", "--database-url", &url], &[]);
    let (status, body) = viewer_name(&second.address, &pasted).await;
    assert_eq!(
        (status, &body["data"]["viewer"]["displayName"]),
        (200, &json!("Casey Customer"))
    );
    let (status, body) = viewer_name(&second.address, &minted).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["viewer"]["displayName"].is_string(), "{body}");
    second.signal("TERM");
    let (_, logs) = second.exit().await;
    assert!(
        logs.iter().any(|line| line["fields"]["message"]
            .as_str()
            .or(line["message"].as_str())
            .is_some_and(|m| m.contains("not seeding"))),
        "a restart with --demo says it did not seed: {logs:#?}"
    );
}

#[test]
fn signing_keys_come_from_the_environment_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("j.db").display());
    assert!(
        dishpatch()
            .args(["seed", "--demo", "--database-url", &url])
            .output()
            .unwrap()
            .status
            .success()
    );
    let secret = "a-signing-secret-from-the-environment-0123456789";
    let output = dishpatch()
        .args([
            "--database-url",
            &url,
            "token",
            "--user",
            "customer@dishpatch.test",
        ])
        .env(
            "DISHPATCH_AUTH__SIGNING_KEYS",
            format!(r#"[{{"kid": "env", "secret": "{secret}"}}]"#),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let settings = dishpatch::config::AuthSettings {
        signing_keys: vec![dishpatch::config::SigningKey {
            kid: "env".into(),
            secret: dishpatch::config::Secret::new(secret),
        }],
        ..Default::default()
    };
    dishpatch::auth::tokens::AccessTokens::from_settings(&settings)
        .unwrap()
        .verify(&token)
        .expect("signed with the key from the environment");
    assert!(
        !dir.path().join("j.db.signing-key").exists(),
        "configured keys win"
    );

    let bad = dishpatch()
        .args([
            "--database-url",
            &url,
            "token",
            "--user",
            "customer@dishpatch.test",
        ])
        .env("DISHPATCH_AUTH__SIGNING_KEYS", "[{kid = 'x'}]")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must be JSON"));
}

#[tokio::test]
async fn ctrl_c_lets_a_request_in_flight_finish_and_store_its_order() {
    use sea_orm::{ConnectionTrait, Database};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("int.db").display());
    let serving = Serving::start(&["--demo", "--database-url", &url], &[]);
    let customer = serving.demo_authorization("customer");
    let client = reqwest::Client::new();
    let (restaurant, item) = roma_and_an_available_item(&serving.address).await;

    // Another process holds SQLite's write lock, so the order waits inside the server.
    let holder = Database::connect(&url).await.unwrap();
    holder.execute_unprepared("BEGIN IMMEDIATE").await.unwrap();
    let place = tokio::spawn({
        let (client, address) = (client.clone(), serving.address.clone());
        async move {
            client
                .post(format!("{address}/graphql"))
                .header("authorization", customer)
                .json(&json!({
                    "query": "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }",
                    "variables": { "input": {
                        "restaurantId": restaurant,
                        "lines": [{ "menuItemId": item, "quantity": 1 }],
                        "deliveryAddress": "Torstrasse 1, Berlin",
                        "deliveryLocation": { "latitude": 52.53, "longitude": 13.40 },
                        "idempotencyKey": "ctrl-c",
                    } },
                }))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    serving.signal("INT");
    tokio::time::sleep(Duration::from_millis(500)).await;
    holder.execute_unprepared("COMMIT").await.unwrap();
    let response = place
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["data"]["placeOrder"]["order"]["id"].is_string(),
        "{body}"
    );
    let (status, _) = serving.exit().await;
    assert!(status.success(), "{status:?}");
    let stored = holder
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT COUNT(*) AS n FROM orders WHERE idempotency_key = 'ctrl-c'",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.try_get::<i64>("", "n").unwrap(), 1);
}

/// Runs `dishpatch` with `args` to its end and returns (success, stdout, stderr, seconds).
fn run_to_end(args: &[&str]) -> (bool, String, String, f64) {
    let started = std::time::Instant::now();
    let output = dishpatch().args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed().as_secs_f64(),
    )
}

#[test]
fn startup_errors_are_said_once_plainly_and_early() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let db = dir.path().join("never.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());

    let listen = format!("127.0.0.1:{port}");
    let (ok, stdout, stderr, _) =
        run_to_end(&["serve", "--listen", &listen, "--database-url", &url]);
    assert!(!ok);
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(
        !db.exists(),
        "a taken port is found before the database is made"
    );
    assert_eq!(stderr.matches("error:").count(), 1, "said once: {stderr}");
    assert!(
        !stdout.contains("already in use"),
        "not also logged on stdout: {stdout}"
    );

    let (ok, _, stderr, _) = run_to_end(&["serve", "--listen", "9000", "--database-url", &url]);
    assert!(!ok);
    assert!(stderr.contains("HOST:PORT"), "{stderr}");

    let (ok, _, stderr, _) =
        run_to_end(&["serve", "--listen", "127.0.0.1:0", "--database-url", "foo"]);
    assert!(!ok);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("sqlite://") && stderr.contains("postgres://"),
        "{stderr}"
    );

    // Nothing listens on the port just freed: refused at once, naming the address.
    drop(taken);
    let unreachable = format!("postgres://postgres@127.0.0.1:{port}/nothing");
    let (ok, _, stderr, seconds) = run_to_end(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &unreachable,
    ]);
    assert!(!ok);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("line "), "no library internals: {stderr}");
    assert!(seconds < 8.0, "took {seconds:.1} s");
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let output = dishpatch()
        .args([
            "--log-format",
            "pretty",
            "migrate",
            "up",
            "--database-url",
            &url,
        ])
        .env("DISHPATCH_LOG_FILTER", "debug")
        .output()
        .unwrap();
    assert!(output.status.success());
    let (ok, stdout, stderr, _) =
        run_to_end(&["serve", "--listen", "9000", "--database-url", &url]);
    assert!(!ok);
    for text in [
        &stdout,
        &stderr,
        &String::from_utf8_lossy(&output.stdout).into_owned(),
    ] {
        assert!(!text.contains('\u{1b}'), "an escape code in {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_answers_every_request_it_took_and_closes_sockets_with_1001() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("term.db").display());
    // The load is one customer's as fast as the server answers: without a rate limit, so that
    // every request it sends is one the server must answer (a 429 would count as a failure).
    let serving = Serving::start(
        &["--demo", "--database-url", &url],
        &[("DISHPATCH_RATE_LIMIT__ENABLED", "false")],
    );
    let (owner, customer) = (
        serving.demo_authorization("restaurant owner"),
        serving.demo_authorization("customer"),
    );
    let address = serving.address.clone();
    let (restaurant, item) = roma_and_an_available_item(&address).await;

    // Subscribers of the kitchen's feed.
    let mut sockets = Vec::new();
    for _ in 0..10 {
        let mut request = format!("{}/graphql", address.replace("http://", "ws://"))
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let init = json!({ "type": "connection_init", "payload": { "Authorization": owner } });
        socket.send(Message::text(init.to_string())).await.unwrap();
        let _ack = socket.next().await;
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { restaurantOrders(restaurantId: $id) { id } }",
            "variables": { "id": restaurant } } });
        socket
            .send(Message::text(subscribe.to_string()))
            .await
            .unwrap();
        sockets.push(socket);
    }

    // Readers and customers, each on its own keep-alive connection, until the server is gone.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for worker in 0..8 {
        let (address, customer, restaurant, item, stop) = (
            address.clone(),
            customer.clone(),
            restaurant.clone(),
            item.clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let (mut answered, mut refused, mut failed) = (0, 0, Vec::new());
            for round in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let body = if worker % 2 == 0 {
                    json!({ "query": "{ restaurants(first: 10) { edges { node { name menu { items { name } } } } } }" })
                } else {
                    json!({
                        "query": "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }",
                        "variables": { "input": {
                            "restaurantId": restaurant, "lines": [{ "menuItemId": item, "quantity": 1 }],
                            "deliveryAddress": "Torstrasse 1, Berlin",
                            "deliveryLocation": { "latitude": 52.53, "longitude": 13.40 },
                            "idempotencyKey": format!("term-{worker}-{round}"),
                        } },
                    })
                };
                let id = format!("load-{worker}-{round}");
                match client
                    .post(format!("{address}/graphql"))
                    .header("authorization", &customer)
                    .header("x-request-id", &id)
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status();
                        match response.text().await {
                            Ok(_) if status == 200 => answered += 1,
                            outcome => failed.push((id, format!("{status}: {outcome:?}"))),
                        }
                    }
                    // The listener is closed: the server never took this request.
                    Err(error) if error.is_connect() => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    // Refused or reset before the server read it (a connection still in the
                    // listener's queue when it closed), or dropped after: the log tells.
                    Err(error) => failed.push((id, format!("{error:?}"))),
                }
            }
            (answered, refused, failed)
        }));
    }
    // A load balancer's probe, on a connection it keeps open.
    let probe = reqwest::Client::new();
    let ready = probe.get(format!("{address}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let signalled = std::time::Instant::now();
    serving.signal("TERM");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let draining = probe.get(format!("{address}/readyz")).send().await.unwrap();
    assert_eq!(draining.status(), 503, "not ready as soon as it stops");

    for socket in &mut sockets {
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
                Ok(Some(Ok(Message::Close(Some(close))))) => break u16::from(close.code),
                Ok(Some(Ok(_))) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(code, 1001);
    }
    let closed_after = signalled.elapsed();
    let (status, logs) = serving.exit().await;
    assert!(status.success(), "{status:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut answered, mut failures) = (0, Vec::new());
    for worker in load {
        let (done, _refused, failed) = worker.await.unwrap();
        answered += done;
        failures.extend(failed);
    }
    assert!(answered > 0, "the load ran");
    // A request the server took is in its log (every request logs when it is answered);
    // none of those may have failed at the client.
    let taken: std::collections::HashSet<&str> = logs
        .iter()
        .filter_map(|line| line["span"]["request_id"].as_str())
        .collect();
    let lost: Vec<_> = failures
        .iter()
        .filter(|(id, _)| taken.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "requests the server took and the client never got: {lost:#?}"
    );
    assert!(
        failures.len() <= 8,
        "at most one request a client was sending as the listener closed: {failures:#?}"
    );
    assert!(
        closed_after < Duration::from_secs(2),
        "every socket was told to go away at once, not after the grace period: {closed_after:?}"
    );
}

mod a_webhook_committed_before_a_kill_9_is_sent_after_the_restart {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        kill_9_between_commit_and_delivery(crate::helpers::Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        kill_9_between_commit_and_delivery(crate::helpers::Backend::Postgres).await;
    }
}

/// An order placed through a server that is then killed with SIGKILL before sending its
/// webhook reaches the receiver from the next server over the same database.
async fn kill_9_between_commit_and_delivery(backend: crate::helpers::Backend) {
    use crate::orders::{available, order_input, roma_items};
    // The test's own server only prepares (it never sends).
    let Some(app) = crate::helpers::TestApp::spawn_with(backend, 1, |settings| {
        settings.webhooks.send = false;
        settings.webhooks.allow_private_targets = true;
    })
    .await
    else {
        return;
    };
    let hooks = crate::webhooks::Receiver::start().await;
    let (_, secret) = crate::webhooks::roma_endpoint(&app, &hooks.url).await;
    hooks.secrets(&[&secret]).await;
    let keys = r#"[{"kid": "test", "secret": "a-signing-key-for-the-tests-only-0123456789"}]"#;
    let env = |send: &'static str| {
        [
            ("DISHPATCH_WEBHOOKS__SEND", send),
            ("DISHPATCH_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
            ("DISHPATCH_AUTH__SIGNING_KEYS", keys),
        ]
    };
    let first = Serving::start(&["--database-url", &app.database_url], &env("false"));
    let (restaurant, items) = roma_items(&app).await;
    let customer = app.bearer(dishpatch::seed::DEMO_CUSTOMER).await;
    let placed: Value = reqwest::Client::new()
        .post(format!("{}/graphql", first.address))
        .header("authorization", &customer)
        .json(&json!({
            "query": "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }",
            "variables": { "input": order_input(&restaurant, &available(&items, 1), "before-the-kill") },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order = placed["data"]["placeOrder"]["order"]["id"].clone();
    assert!(order.is_string(), "{placed}");
    let Serving { mut server, .. } = first;
    server.0.kill().unwrap(); // SIGKILL: no shutdown, nothing flushed.
    server.0.wait().unwrap();
    assert!(hooks.received().await.is_empty());

    let _second = Serving::start(&["--database-url", &app.database_url], &env("true"));
    let received = hooks
        .until(Duration::from_secs(30), |received| !received.is_empty())
        .await;
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(received[0]["type"], "order.placed");
    assert_eq!(received[0]["payload"]["data"]["order"]["id"], order);
    assert_eq!(received[0]["verifiedWith"], json!([true]));
}
