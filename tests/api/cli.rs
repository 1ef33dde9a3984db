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
    let mut server = Server(
        dishpatch()
            .args([
                "--log-format",
                "json",
                "serve",
                "--demo",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &url,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (headers_tx, headers) = mpsc::channel::<String>();
    let stderr = server.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.trim_start().starts_with("customer") && headers_tx.send(line).is_err() {
                return;
            }
        }
    });
    let (lines_tx, lines) = mpsc::channel::<Value>();
    let stdout = server.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let parsed =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("a JSON log line: {line}"));
            if lines_tx.send(parsed).is_err() {
                return;
            }
        }
    });
    let mut logs = Vec::new();
    let address = loop {
        let line = lines
            .recv_timeout(Duration::from_mins(1))
            .expect("the server starts");
        if let Some(address) = line["address"].as_str() {
            break address.to_owned();
        }
        logs.push(line);
    };

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

    // The printed demo header works as it is, and a tampered copy is refused.
    let line = headers
        .recv_timeout(Duration::from_secs(10))
        .expect("demo headers are printed");
    let json_start = line.find('{').expect("a JSON header object");
    let header: Value = serde_json::from_str(&line[json_start..]).unwrap();
    let authorization = header["Authorization"].as_str().unwrap().to_owned();
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

    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let status = server.0.wait();
        (status, server)
    })
    .await
    .unwrap()
    .0
    .unwrap();
    assert!(exit.success(), "graceful shutdown exits cleanly: {exit:?}");

    logs.extend(lines.try_iter());
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
    assert!(run(&["migrate", "status"]).contains("pending  m20261122_000001_create_marketplace"));
    run(&["migrate", "up"]);
    assert!(run(&["migrate", "status"]).contains("applied  m20261122_000001_create_marketplace"));
    run(&["migrate", "down"]);
    assert!(run(&["migrate", "status"]).contains("pending  m20261122_000001_create_marketplace"));
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

    let unconfigured = dishpatch()
        .args([
            "--database-url",
            &url,
            "token",
            "--user",
            "customer@dishpatch.test",
        ])
        .output()
        .unwrap();
    assert!(!unconfigured.status.success(), "no keys, no token");

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
