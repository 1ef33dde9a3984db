//! GraphQL over WebSocket on `/graphql`, in both protocols.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, handshake::client::Request,
};

use crate::helpers::{TestApp, db_test};

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The upgrade request for `/graphql` offering the subprotocols `offer`.
pub fn upgrade_request(app: &TestApp, offer: &str) -> Request {
    upgrade_request_to(&app.address, offer)
}

/// The upgrade request for `/graphql` of the server at `address` (`http://…`), offering `offer`.
pub fn upgrade_request_to(address: &str, offer: &str) -> Request {
    let mut request = format!("{}/graphql", address.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", offer.parse().unwrap());
    request
}

pub async fn connect(app: &TestApp, protocol: &str) -> Socket {
    connect_to(&app.address, protocol).await
}

/// A socket to the server at `address` (another replica, say) speaking `protocol`.
pub async fn connect_to(address: &str, protocol: &str) -> Socket {
    let (socket, response) =
        tokio_tungstenite::connect_async(upgrade_request_to(address, protocol))
            .await
            .expect("upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next protocol message, skipping keepalives; within 10 seconds, however many pings come
/// meanwhile.
pub async fn receive(socket: &mut Socket) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] != "ka" && value["type"] != "ping" {
                return value;
            }
        }
    }
}

/// Runs `query` (a query or mutation) on a `graphql-transport-ws` socket as operation `id`:
/// its result (`next`, then `complete`), or the payload of an `error` message.
pub async fn operation(socket: &mut Socket, id: &str, query: &str, variables: Value) -> Value {
    send(socket, json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
    let message = receive(socket).await;
    assert_eq!(message["id"], id, "{message}");
    match message["type"].as_str() {
        Some("next") => {
            let done = receive(socket).await;
            assert_eq!(done, json!({ "id": id, "type": "complete" }));
            message["payload"].clone()
        }
        Some("error") => json!({ "errors": message["payload"] }),
        _ => panic!("unexpected {message}"),
    }
}

/// The code of the Close frame the server sends next, within 10 s, skipping keepalives
/// (WebSocket pings and pongs; protocol `ping`, `pong` and `ka` messages). Panics on any
/// other message.
pub async fn close_code(socket: &mut Socket) -> u16 {
    close_code_skipping(socket, &[]).await
}

/// Like `close_code`, also skipping protocol messages whose `type` is one of `skipped`.
pub async fn close_code_skipping(socket: &mut Socket, skipped: &[&str]) -> u16 {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the server closes the socket within 10 s");
        match frame {
            Some(Ok(Message::Close(Some(close)))) => return u16::from(close.code),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap_or_else(|_| {
                    panic!("expected a Close frame, got a text frame that is not JSON: {text}")
                });
                let kind = message["type"].as_str().unwrap_or_default();
                assert!(
                    ["ka", "ping", "pong"].contains(&kind) || skipped.contains(&kind),
                    "expected a Close frame, got {message}"
                );
            }
            Some(Ok(other)) => panic!("expected a Close frame with a code, got {other:?}"),
            Some(Err(error)) => panic!("expected a Close frame, got the error: {error}"),
            None => panic!("expected a Close frame, but the socket ended without one"),
        }
    }
}

const QUERY: &str =
    "{ restaurants(first: 2) { totalCount edges { node { name menu { items { name } } } } } }";

db_test! {
    async fn graphql_transport_ws_runs_operations_after_the_handshake(app) {
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": {} })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": QUERY } })).await;
        let next = receive(&mut socket).await;
        assert_eq!(next["type"], "next");
        assert_eq!(next["id"], "1");
        assert_eq!(next["payload"]["data"]["restaurants"]["totalCount"], 20);
        assert!(!next["payload"]["data"]["restaurants"]["edges"][0]["node"]["menu"]["items"].as_array().unwrap().is_empty());
        assert_eq!(receive(&mut socket).await, json!({ "id": "1", "type": "complete" }));
    }
}

db_test! {
    async fn legacy_graphql_ws_runs_operations_after_the_handshake(app) {
        let mut socket = connect(&app, "graphql-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": {} })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, json!({ "id": "7", "type": "start", "payload": { "query": QUERY } })).await;
        let data = receive(&mut socket).await;
        assert_eq!(data["type"], "data");
        assert_eq!(data["payload"]["data"]["restaurants"]["totalCount"], 20);
        assert_eq!(receive(&mut socket).await["type"], "complete");
    }
}

db_test! {
    async fn connection_init_authenticates_the_socket(app) {
        let mut socket = connect(&app, "graphql-transport-ws").await;
        let bearer = app.bearer(dishpatch::seed::DEMO_CUSTOMER).await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": bearer } })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { displayName } }" } })).await;
        let next = receive(&mut socket).await;
        assert_eq!(next["payload"]["data"]["viewer"]["displayName"], "Casey Customer");

        let mut refused = connect(&app, "graphql-transport-ws").await;
        send(&mut refused, json!({ "type": "connection_init", "payload": { "Authorization": "Bearer forged" } })).await;
        // Closed without an ack, with graphql-transport-ws's 4403 Forbidden.
        assert_eq!(close_code(&mut refused).await, 4403);
    }
}

db_test! {
    async fn a_bad_credential_on_the_upgrade_or_in_the_init_payload_is_refused(app) {
        let mut request = upgrade_request(&app, "graphql-transport-ws");
        request.headers_mut().insert("authorization", "Bearer forged".parse().unwrap());
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("expected the upgrade to be refused, got {other:?}"),
        }

        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "authorization": 123 } })).await;
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await.unwrap();
        assert!(matches!(closed, Some(Ok(Message::Close(_))) | None), "{closed:?}");
    }
}

/// `Bearer <access token>` for `email`, valid for `seconds` more, and its expiry in
/// milliseconds since the epoch (tokens count whole seconds).
async fn short_lived_bearer(app: &TestApp, email: &str, seconds: i64) -> (String, i64) {
    let id = app.user_id(email).await;
    let now = chrono::Utc::now();
    let ttl = chrono::Duration::seconds(seconds);
    let expires_at = (now + ttl).timestamp() * 1000;
    (
        format!("Bearer {}", app.tokens.issue(id, None, Some(ttl), now)),
        expires_at,
    )
}

/// Asserts that the socket was closed no earlier than `expires_at` (milliseconds).
fn assert_not_before(expires_at: i64) {
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        now >= expires_at - 50,
        "closed {} ms before the token expired",
        expires_at - now
    );
}

/// Subscribes to the restaurant's new orders on `socket`, as its owner.
async fn follow_kitchen(app: &TestApp, socket: &mut Socket) {
    let restaurant = app.restaurant_id("trattoria-roma").await;
    send(
        socket,
        json!({ "id": "k", "type": "subscribe", "payload": {
        "query": "subscription($r: ID!) { restaurantOrders(restaurantId: $r) { status } }",
        "variables": { "r": restaurant } } }),
    )
    .await;
}

db_test! {
    async fn a_socket_is_closed_when_the_credential_of_its_connection_init_expires(app) {
        let (bearer, expires_at) = short_lived_bearer(&app, dishpatch::seed::DEMO_OWNER, 3).await;
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": bearer } })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { displayName } }" } })).await;
        let next = receive(&mut socket).await;
        assert_eq!(next["payload"]["data"]["viewer"]["displayName"], "Olivia Owner", "{next}");
        assert_eq!(receive(&mut socket).await["type"], "complete");
        // A subscription that would stay open: the expiry ends it with the socket.
        follow_kitchen(&app, &mut socket).await;
        assert_eq!(close_code(&mut socket).await, 4403);
        assert_not_before(expires_at);

        // An anonymous socket has nothing to expire and stays open past that point.
        let mut anonymous = connect(&app, "graphql-transport-ws").await;
        send(&mut anonymous, json!({ "type": "connection_init", "payload": {} })).await;
        assert_eq!(receive(&mut anonymous).await["type"], "connection_ack");
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        send(&mut anonymous, json!({ "id": "2", "type": "subscribe", "payload": { "query": QUERY } })).await;
        assert_eq!(receive(&mut anonymous).await["type"], "next");
    }
}

db_test! {
    async fn a_socket_authenticated_on_the_upgrade_is_closed_when_that_credential_expires(app) {
        let (bearer, expires_at) = short_lived_bearer(&app, dishpatch::seed::DEMO_OWNER, 3).await;
        let mut request = upgrade_request(&app, "graphql-ws");
        request.headers_mut().insert("authorization", bearer.parse().unwrap());
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("upgrade");
        send(&mut socket, json!({ "type": "connection_init", "payload": {} })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, json!({ "id": "1", "type": "start", "payload": { "query": "{ viewer { displayName } }" } })).await;
        assert_eq!(receive(&mut socket).await["payload"]["data"]["viewer"]["displayName"], "Olivia Owner");
        assert_eq!(receive(&mut socket).await["type"], "complete");
        assert_eq!(close_code(&mut socket).await, 4403);
        assert_not_before(expires_at);
    }
}
