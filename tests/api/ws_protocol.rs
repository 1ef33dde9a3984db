//! The graphql-transport-ws protocol on `/graphql`, frame by frame: each violation closes the
//! socket with the close code the protocol names, and the server goes on serving everyone else.
//! Last, the reference npm `graphql-ws` client (`tests/clients/ws.mjs`) against the server.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use dishpatch::seed;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::{
    helpers::{Backend, TestApp, db_test},
    orders::{act, available, order_input, place, roma_items},
    websocket::{Socket, close_code, close_code_skipping, connect, receive, send, upgrade_request},
};

const ORDER_UPDATED: &str = "subscription($id: ID!) { orderUpdated(orderId: $id) { status } }";

/// A fresh server on SQLite: the protocol does not depend on the database.
async fn sqlite_app() -> TestApp {
    TestApp::spawn(Backend::Sqlite, 1)
        .await
        .expect("SQLite is always available")
}

/// A graphql-transport-ws socket whose `connection_init` (with `payload`) was acknowledged.
async fn acknowledged(app: &TestApp, payload: &Value) -> Socket {
    let mut socket = connect(app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": payload }),
    )
    .await;
    let ack = receive(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

/// A `subscribe` message running `query` under `id`.
fn subscribe(id: &str, query: &str) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": { "query": query } })
}

/// A `subscribe` message following the order `order` under `id`.
fn follow_order(id: &str, order: &str) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": {
        "query": ORDER_UPDATED, "variables": { "id": order } } })
}

/// The id of an order that the customer `bearer` has just placed at Trattoria Roma.
async fn placed_order(app: &TestApp, bearer: &str, key: &str) -> String {
    let (restaurant, items) = roma_items(app).await;
    let placed = place(
        app,
        bearer,
        order_input(&restaurant, &available(&items, 1), key),
    )
    .await;
    assert_eq!(placed["userErrors"], json!([]), "{placed}");
    placed["order"]["id"]
        .as_str()
        .expect("the order is placed")
        .to_owned()
}

/// Asserts the server still runs operations for a fresh socket and over plain HTTP.
async fn assert_still_serving(app: &TestApp) {
    let mut socket = acknowledged(app, &json!({})).await;
    send(&mut socket, subscribe("t", "{ __typename }")).await;
    let next = receive(&mut socket).await;
    assert_eq!(
        (next["type"].as_str(), next["id"].as_str()),
        (Some("next"), Some("t")),
        "{next}"
    );
    assert_eq!(next["payload"]["data"]["__typename"], "Query", "{next}");
    assert_eq!(
        receive(&mut socket).await,
        json!({ "id": "t", "type": "complete" })
    );
    let response = app.graphql("{ __typename }", json!({})).await;
    assert_eq!(response.data()["__typename"], "Query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_json_closes_the_socket_with_4400() {
    let app = sqlite_app().await;
    let mut socket = acknowledged(&app, &json!({})).await;
    socket.send(Message::text("{ not json")).await.unwrap();
    assert_eq!(close_code(&mut socket).await, 4400);
    assert_still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_an_unknown_type_closes_the_socket_with_4400() {
    let app = sqlite_app().await;
    let mut socket = acknowledged(&app, &json!({})).await;
    send(&mut socket, json!({ "type": "hello" })).await;
    assert_eq!(close_code(&mut socket).await, 4400);
    assert_still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_without_an_id_or_a_query_closes_the_socket_with_4400() {
    let app = sqlite_app().await;
    for message in [
        json!({ "type": "subscribe", "payload": { "query": "{ __typename }" } }),
        json!({ "id": "", "type": "subscribe", "payload": { "query": "{ __typename }" } }),
        json!({ "id": "1", "type": "subscribe" }),
        json!({ "id": "1", "type": "subscribe", "payload": {} }),
        json!({ "id": "1", "type": "subscribe", "payload": { "query": 42 } }),
    ] {
        let mut socket = acknowledged(&app, &json!({})).await;
        send(&mut socket, message.clone()).await;
        assert_eq!(close_code(&mut socket).await, 4400, "{message}");
    }
    assert_still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_frame_closes_the_socket_with_4400() {
    let app = sqlite_app().await;
    let mut socket = acknowledged(&app, &json!({})).await;
    socket
        .send(Message::binary(b"{\"type\":\"ping\"}".to_vec()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut socket).await, 4400);
    assert_still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_before_connection_init_closes_the_socket_with_4401() {
    let app = sqlite_app().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, subscribe("1", "{ __typename }")).await;
    assert_eq!(close_code(&mut socket).await, 4401);
    assert_still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_sends_connection_init_is_closed_with_4408_after_the_init_timeout() {
    let app = sqlite_app().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    let opened = Instant::now();
    assert_eq!(close_code(&mut socket).await, 4408);
    let waited = opened.elapsed();
    // `SocketLimits::default().init_timeout` is 3 s: closing much earlier has another cause.
    assert!(
        waited >= Duration::from_millis(2500),
        "closed after {waited:?}, before the init timeout"
    );
    assert!(
        waited < Duration::from_secs(8),
        "closed only after {waited:?}"
    );
    assert_still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_init_closes_the_socket_with_4429() {
    let app = sqlite_app().await;
    let init = json!({ "type": "connection_init", "payload": {} });

    let mut socket = acknowledged(&app, &json!({})).await;
    send(&mut socket, init.clone()).await;
    assert_eq!(close_code(&mut socket).await, 4429);

    // Sent back to back, the second may be read before or after the first is acknowledged.
    let mut eager = connect(&app, "graphql-transport-ws").await;
    send(&mut eager, init.clone()).await;
    send(&mut eager, init).await;
    assert_eq!(
        close_code_skipping(&mut eager, &["connection_ack"]).await,
        4429
    );
    assert_still_serving(&app).await;
}

db_test! {
    async fn a_subscribe_reusing_the_id_of_a_running_subscription_closes_the_socket_with_4409(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let order = placed_order(&app, &customer, "duplicate-id").await;
        let mut socket = acknowledged(&app, &json!({ "Authorization": customer })).await;
        send(&mut socket, follow_order("o", &order)).await;
        // Had the subscription failed, its error would arrive (and free the id) by now.
        tokio::time::sleep(Duration::from_millis(300)).await;
        send(&mut socket, follow_order("o", &order)).await;
        assert_eq!(close_code(&mut socket).await, 4409);
        assert_still_serving(&app).await;
    }
}

db_test! {
    async fn an_operation_id_can_be_reused_once_its_operation_has_completed(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let order = placed_order(&app, &customer, "reused-id").await;
        let mut socket = acknowledged(&app, &json!({ "Authorization": customer })).await;

        // Completed by the server: a query ends with `complete`, and its id is free again.
        for _ in 0..2 {
            send(&mut socket, subscribe("q", "{ __typename }")).await;
            let next = receive(&mut socket).await;
            assert_eq!((next["type"].as_str(), next["id"].as_str()), (Some("next"), Some("q")), "{next}");
            assert_eq!(next["payload"]["data"]["__typename"], "Query", "{next}");
            assert_eq!(receive(&mut socket).await, json!({ "id": "q", "type": "complete" }));
        }

        // Completed by the client: the id then follows the order anew.
        send(&mut socket, follow_order("o", &order)).await;
        send(&mut socket, json!({ "id": "o", "type": "complete" })).await;
        send(&mut socket, follow_order("o", &order)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let moved = act(&app, &owner, "acceptOrder", json!({ "orderId": order })).await;
        assert_eq!(moved["userErrors"], json!([]));
        // async-graphql answers the client's `complete` with one of its own.
        let mut message = receive(&mut socket).await;
        if message == json!({ "id": "o", "type": "complete" }) {
            message = receive(&mut socket).await;
        }
        assert_eq!((message["type"].as_str(), message["id"].as_str()), (Some("next"), Some("o")), "{message}");
        assert_eq!(message["payload"]["data"]["orderUpdated"]["status"], "ACCEPTED", "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_offering_only_unknown_subprotocols_is_refused_at_the_upgrade() {
    let app = sqlite_app().await;
    match tokio_tungstenite::connect_async(upgrade_request(&app, "mqtt")).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected HTTP 400 at the upgrade, got {other:?}"),
    }
    assert_still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_offering_several_subprotocols_is_answered_with_the_graphql_one() {
    let app = sqlite_app().await;
    for (offer, chosen) in [
        ("mqtt, graphql-transport-ws", "graphql-transport-ws"),
        ("mqtt, graphql-ws", "graphql-ws"),
        ("graphql-ws, graphql-transport-ws", "graphql-transport-ws"),
    ] {
        let (_socket, response) = tokio_tungstenite::connect_async(upgrade_request(&app, offer))
            .await
            .unwrap_or_else(|error| panic!("offering {offer}: {error}"));
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            chosen,
            "offering {offer}"
        );
    }
}

/// The npm `graphql-ws` client (`tests/clients/ws.mjs`) in a child process, killed when dropped.
struct NodeClient {
    child: Option<Child>,
    events: mpsc::UnboundedReceiver<Value>,
}

impl NodeClient {
    /// Starts `ws.mjs` against `app`'s `/graphql` with the further command-line `args`.
    fn start(app: &TestApp, args: &[&str]) -> Self {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
        assert!(
            dir.join("node_modules/graphql-ws").exists(),
            "tests/clients has no node_modules: run `npm ci --prefix tests/clients` \
             to install the graphql-ws client"
        );
        let url = format!("{}/graphql", app.address.replace("http://", "ws://"));
        let mut child = Command::new("node")
            .arg(dir.join("ws.mjs"))
            .arg("--url")
            .arg(&url)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs");
        let stdout = BufReader::new(child.stdout.take().expect("a piped stdout"));
        let (sender, events) = mpsc::unbounded_channel();
        // Each line is one JSON event; the channel closes when the client exits.
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let event: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({ "event": "unparsed", "line": line }));
                if sender.send(event).is_err() {
                    break;
                }
            }
        });
        Self {
            child: Some(child),
            events,
        }
    }

    /// The next event the client prints, within 30 s.
    async fn next_event(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(30), self.events.recv())
            .await
            .expect("the client prints an event within 30 s")
            .expect("the client prints an event before it exits")
    }

    /// Every further event the client prints until it exits, and how it exited.
    async fn finish(mut self) -> (Vec<Value>, ExitStatus) {
        let mut events = Vec::new();
        while let Some(event) = tokio::time::timeout(Duration::from_secs(30), self.events.recv())
            .await
            .expect("the client exits within 30 s")
        {
            events.push(event);
        }
        let mut child = self.child.take().expect("the client is running");
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("waiting for the client")
            .expect("the client's exit status");
        (events, status)
    }
}

impl Drop for NodeClient {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

db_test! {
    async fn the_graphql_ws_client_follows_an_order_as_the_restaurant_moves_it(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let order = placed_order(&app, &customer, "npm-client").await;
        let params = json!({ "Authorization": customer }).to_string();
        let variables = json!({ "id": order }).to_string();
        let mut client = NodeClient::start(&app, &[
            "--params", params.as_str(),
            "--query", ORDER_UPDATED,
            "--variables", variables.as_str(),
            "--count", "2",
            "--timeout-ms", "20000",
        ]);
        let connected = client.next_event().await;
        assert_eq!(connected["event"], "connected", "{connected}");
        // The subscription starts listening shortly after the acknowledgement.
        tokio::time::sleep(Duration::from_millis(500)).await;

        let owner = app.bearer(seed::DEMO_OWNER).await;
        // Each move is made once the client has the previous one, as when people act:
        // changes that land within one notification's latency arrive as their latest state.
        let mut statuses = Vec::new();
        for mutation in ["acceptOrder", "startPreparingOrder"] {
            let moved = act(&app, &owner, mutation, json!({ "orderId": order })).await;
            assert_eq!(moved["userErrors"], json!([]), "{mutation}");
            let event = client.next_event().await;
            assert_eq!(event["event"], "next", "{event}");
            statuses.push(event["payload"]["data"]["orderUpdated"]["status"].as_str().unwrap_or("?").to_owned());
        }
        assert_eq!(statuses, ["ACCEPTED", "PREPARING"]);
        let (events, status) = client.finish().await;
        let closed = events
            .iter()
            .find(|event| event["event"] == "closed")
            .unwrap_or_else(|| panic!("the client reports its close: {events:?}"));
        assert_eq!(closed["code"], 1000, "the client disposes cleanly: {events:?}");
        assert!(status.success(), "the client exits with {status}: {events:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_ws_client_sees_a_refused_credential_as_close_code_4403() {
    let app = sqlite_app().await;
    let client = NodeClient::start(
        &app,
        &[
            "--params",
            r#"{"Authorization":"Bearer forged"}"#,
            "--query",
            "{ __typename }",
            "--timeout-ms",
            "20000",
        ],
    );
    let (events, status) = client.finish().await;
    assert!(
        events.iter().all(|event| event["event"] != "connected"),
        "{events:?}"
    );
    let closed = events
        .iter()
        .find(|event| event["event"] == "closed")
        .unwrap_or_else(|| panic!("the client reports its close: {events:?}"));
    assert_eq!(closed["code"], 4403, "{events:?}");
    // 1 is the script's early close; 2 would be its own timeout.
    assert_eq!(status.code(), Some(1), "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_messages_ends_the_socket_instead_of_stalling_it() {
    let app = sqlite_app().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    // Nothing is read while the flood is written; a loop that waited on its own inbox would
    // hang here for ever.
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await;
    for _ in 0..500 {
        send(&mut socket, json!({ "type": "ping" })).await;
    }
    let mut pongs = 0;
    let ended = loop {
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("the server answers or closes within 10 s");
        match frame {
            Some(Ok(Message::Text(text))) if text.contains("\"pong\"") => {
                pongs += 1;
                if pongs == 500 {
                    break None;
                }
            }
            Some(Ok(Message::Close(Some(close)))) => break Some(u16::from(close.code)),
            Some(Ok(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(
        matches!(ended, None | Some(1008)),
        "{ended:?} after {pongs} pongs"
    );
    assert_still_serving(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_ids_are_bounded_in_length() {
    let app = sqlite_app().await;
    let mut socket = acknowledged(&app, &json!({})).await;
    send(&mut socket, subscribe(&"x".repeat(200), "{ __typename }")).await;
    assert_eq!(close_code(&mut socket).await, 4400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_allow_list_mode_sockets_run_only_listed_operations_too() {
    let listed = "query Listed { __typename }";
    let manifest = crate::helpers::allow_list_manifest(listed);
    let path = manifest.path().to_owned();
    let app = TestApp::spawn_with(Backend::Sqlite, 1, move |settings| {
        settings.persisted_queries.allow_list = Some(path);
    })
    .await
    .expect("SQLite");
    let mut socket = acknowledged(&app, &json!({})).await;
    send(&mut socket, subscribe("ok", listed)).await;
    assert_eq!(
        receive(&mut socket).await["payload"]["data"]["__typename"],
        "Query"
    );
    assert_eq!(receive(&mut socket).await["type"], "complete");
    send(
        &mut socket,
        subscribe(
            "no",
            "mutation { createApiToken(input: { name: \"x\", scopes: [ORDERS_READ] }) { secret } }",
        ),
    )
    .await;
    let refused = receive(&mut socket).await;
    let errors = if refused["type"] == "error" {
        &refused["payload"]
    } else {
        &refused["payload"]["errors"]
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "PERSISTED_QUERY_NOT_IN_LIST",
        "{refused}"
    );
}
