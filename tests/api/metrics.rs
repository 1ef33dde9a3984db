//! `/metrics`: what the server did, in the Prometheus text format, checked by `promtool`.
#![expect(
    clippy::float_cmp,
    reason = "samples of counters and gauges are whole numbers, exact in f64"
)]

use std::{io::Write, process::Stdio};

use dishpatch::seed;
use serde_json::json;

use crate::{
    helpers::{Backend, TestApp},
    websocket::{connect, receive, send},
};

/// `promtool` from Debian's prometheus package: `$PROMTOOL`, else on the `PATH`. `None` after
/// saying loudly why the check is skipped; in CI it must be there.
fn promtool() -> Option<String> {
    let candidate = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let found = std::process::Command::new(&candidate)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if found {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but promtool is missing (`.ci/run` unpacks it from Debian's prometheus package)"
    );
    eprintln!("SKIPPED promtool check: set PROMTOOL or put promtool on the PATH");
    None
}

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(format!("{}/metrics", app.address));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_describe_requests_operations_sql_loaders_pool_and_sockets() {
    let app = TestApp::spawn(Backend::Sqlite, 1).await.expect("SQLite");
    let browse = app
        .graphql(
            "query Browse { restaurants(first: 5) { edges { node { name menu { items { name } } } } } }",
            json!({}),
        )
        .await;
    browse.data();
    let statements = browse.sql_statements();
    let invalid = app.graphql("query Broken { nope }", json!({})).await;
    assert_eq!(invalid.error_code(), "GRAPHQL_VALIDATION_FAILED");

    let owner = app.bearer(seed::DEMO_OWNER).await;
    let roma = app.restaurant_id("trattoria-roma").await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": owner } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "r", "type": "subscribe", "payload": {
        "query": "subscription Kitchen($r: ID!) { restaurantOrders(restaurantId: $r) { status } }",
        "variables": { "r": roma } } }),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let response = scrape(&app, None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let value = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
    };

    assert!(
        value(r#"dishpatch_http_requests_total{method="POST",route="/graphql",status="200"}"#)
            >= 3.0
    );
    assert!(value(r#"dishpatch_http_request_duration_seconds_count{route="/graphql"}"#) >= 3.0);
    assert_eq!(
        value(r#"dishpatch_graphql_operations_total{operation="Browse",type="query"}"#),
        1.0
    );
    assert_eq!(
        value(
            r#"dishpatch_graphql_operation_duration_seconds_count{operation="Browse",type="query"}"#
        ),
        1.0
    );
    assert_eq!(
        value(r#"dishpatch_graphql_operations_total{operation="Kitchen",type="subscription"}"#),
        1.0
    );
    assert!(value(r#"dishpatch_graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"}"#) >= 1.0);
    assert!(value("dishpatch_sql_statements_total") >= f64::from(statements));
    assert!(value("dishpatch_sql_statements_per_request_sum") >= f64::from(statements));
    assert!(value(r#"dishpatch_dataloader_batch_size_count{loader="items_by_restaurant"}"#) >= 1.0);
    assert!(
        value(r#"dishpatch_dataloader_batch_size_sum{loader="items_by_restaurant"}"#) >= 5.0,
        "one batch of the 5 restaurants"
    );
    assert!(value(r#"dishpatch_db_pool_connections{state="idle"}"#) >= 0.0);
    assert!(value(r#"dishpatch_db_pool_connections{state="in_use"}"#) >= 0.0);
    assert_eq!(value("dishpatch_websocket_connections"), 1.0);
    assert_eq!(value("dishpatch_graphql_active_subscriptions"), 1.0);
    assert!(value("process_resident_memory_bytes") > 0.0);

    // Closing the socket ends its subscription and its connection.
    drop(socket);
    let mut closed = String::new();
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        closed = scrape(&app, None).await.text().await.unwrap();
        if sample(&closed, "dishpatch_websocket_connections") == Some(0.0) {
            break;
        }
    }
    assert_eq!(
        sample(&closed, "dishpatch_websocket_connections"),
        Some(0.0),
        "{closed}"
    );
    assert_eq!(
        sample(&closed, "dishpatch_graphql_active_subscriptions"),
        Some(0.0)
    );

    let Some(promtool) = promtool() else { return };
    let mut check = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_token_strangers_cannot_scrape() {
    let app = TestApp::spawn_with(Backend::Sqlite, 1, |settings| {
        settings.metrics_token = Some(dishpatch::config::Secret::new("scrape-secret"));
    })
    .await
    .expect("SQLite");
    assert_eq!(scrape(&app, None).await.status(), 401);
    assert_eq!(
        scrape(&app, Some("Bearer wrong-secret")).await.status(),
        401
    );
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    assert_eq!(
        scrape(&app, Some(&customer)).await.status(),
        401,
        "a user token is not the metrics token"
    );
    let allowed = scrape(&app, Some("Bearer scrape-secret")).await;
    assert_eq!(allowed.status(), 200);
    assert!(
        allowed
            .text()
            .await
            .unwrap()
            .contains("dishpatch_http_requests_total")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_grow_the_operation_series_without_bound() {
    let app = TestApp::spawn(Backend::Sqlite, 1).await.expect("SQLite");
    for chunk in 0..25 {
        let batch: Vec<_> = (0..10)
            .map(|i| json!({ "query": format!("query Op{chunk}x{i} {{ __typename }}") }))
            .collect();
        app.post_json(&json!(batch)).await;
    }
    let text = scrape(&app, None).await.text().await.unwrap();
    let named = text
        .lines()
        .filter(|line| line.starts_with("dishpatch_graphql_operations_total{"))
        .count();
    assert!(named <= 201, "{named} series");
    assert_eq!(
        sample(
            &text,
            r#"dishpatch_graphql_operations_total{operation="other",type="query"}"#
        ),
        Some(50.0)
    );
}
