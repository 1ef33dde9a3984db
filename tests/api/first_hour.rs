//! What a new user and a frontend developer rely on in their first hour: user errors a form
//! can point at, codes a client can switch on, plain formats, CORS and WebSocket handshakes
//! that work with the common clients, HEAD where GET works.

use dishpatch::seed;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{Backend, TestApp, db_test},
    orders::{available, order_input, roma_items},
    websocket::{connect, receive, send, upgrade_request},
};

const PLACE: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
    order { id lines { name quantity menuItem { id name available } } createdAt }
    userErrors { field message code } } }";

db_test! {
    async fn user_errors_point_at_the_line_and_field_at_fault(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let (restaurant, items) = roma_items(&app).await;
        let mut input = order_input(&restaurant, &available(&items, 3), "first-hour-1");
        input["lines"][2]["quantity"] = json!(0);
        let response = app.graphql_as(Some(&customer), PLACE, json!({ "input": input })).await;
        let payload = &response.data()["placeOrder"];
        assert_eq!(payload["order"], Value::Null);
        assert_eq!(payload["userErrors"][0]["field"], json!(["input", "lines", "2", "quantity"]));
        assert_eq!(payload["userErrors"][0]["code"], "INVALID");

        let sold_out = items.iter().find(|(_, ok, _)| !ok).map(|(id, _, _)| id.clone());
        if let Some(sold_out) = sold_out {
            let mut lines = available(&items, 1);
            lines.push(sold_out);
            let input = order_input(&restaurant, &lines, "first-hour-2");
            let response = app.graphql_as(Some(&customer), PLACE, json!({ "input": input })).await;
            let error = &response.data()["placeOrder"]["userErrors"][0];
            assert_eq!(error["field"], json!(["input", "lines", "1", "menuItemId"]));
            assert_eq!(error["code"], "ITEM_UNAVAILABLE");
        }
    }
}

db_test! {
    async fn order_lines_link_back_to_the_menu_item_for_ordering_again(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let (restaurant, items) = roma_items(&app).await;
        let chosen = available(&items, 2);
        let input = order_input(&restaurant, &chosen, "first-hour-3");
        let response = app.graphql_as(Some(&customer), PLACE, json!({ "input": input })).await;
        let order = &response.data()["placeOrder"]["order"];
        let linked: Vec<&str> = order["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| {
                assert_eq!(line["menuItem"]["name"], line["name"]);
                line["menuItem"]["id"].as_str().unwrap()
            })
            .collect();
        assert_eq!(linked, chosen.iter().map(String::as_str).collect::<Vec<_>>());
        // Timestamps carry milliseconds, not nanoseconds, and say UTC.
        let created = order["createdAt"].as_str().unwrap();
        assert_eq!(created.len(), "2026-12-01T19:30:00.000Z".len(), "{created}");
        assert!(created.ends_with('Z') && created.as_bytes()[19] == b'.', "{created}");

        // A stranger still cannot reach the line (nor its item) through the order.
        let stranger = app.bearer(seed::DEMO_COURIER).await;
        let id = order["id"].as_str().unwrap();
        let peek = app
            .graphql_as(Some(&stranger), "query($id: ID!) { order(id: $id) { lines { menuItem { id } } } }", json!({ "id": id }))
            .await;
        assert_eq!(peek.data()["order"], Value::Null);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_error_codes_are_an_enum_and_every_code_is_documented() {
    let sdl = dishpatch::graphql::sdl();
    let user_error = sdl
        .split("type UserError {")
        .nth(1)
        .expect("UserError")
        .split('}')
        .next()
        .unwrap();
    assert!(user_error.contains("code: UserErrorCode!"), "{user_error}");
    let codes = sdl
        .split("enum UserErrorCode {")
        .nth(1)
        .expect("the enum")
        .split('}')
        .next()
        .unwrap();
    let mut documented = 0;
    let mut lines = codes
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .peekable();
    while let Some(line) = lines.next() {
        if line.starts_with('"') {
            // A description, then its value.
            while !lines
                .peek()
                .is_some_and(|l| l.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            {
                lines.next();
            }
            lines.next();
            documented += 1;
        } else {
            panic!("`{line}` has no description");
        }
    }
    assert!(documented >= 13, "{documented} documented codes");
    assert!(sdl.contains("RFC 3339"), "the DateTime scalar is described");
}

db_test! {
    async fn distances_are_rounded_to_metres(app) {
        let response = app
            .graphql(
                "{ restaurants(first: 20) { edges { node { distanceKm(from: { latitude: 52.5201, longitude: 13.4049 }) } } } }",
                json!({}),
            )
            .await;
        for edge in response.data()["restaurants"]["edges"].as_array().unwrap() {
            let km = edge["node"]["distanceKm"].as_f64().unwrap();
            assert!((km * 1000.0 - (km * 1000.0).round()).abs() < 1e-6, "{km}");
            assert!(edge["node"]["distanceKm"].to_string().len() <= 12, "{km}");
        }
    }
}

async fn sqlite_app(configure: impl FnOnce(&mut dishpatch::config::Settings)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, 1, configure)
        .await
        .expect("SQLite is always available")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_lets_apollo_clients_through_and_exposes_the_statement_count() {
    let app = sqlite_app(|settings| {
        settings.cors_allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let url = format!("{}/graphql", app.address);
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization, apollographql-client-name, apollographql-client-version",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("apollographql-client-name"), "{allowed}");
    let post = app
        .client
        .post(&url)
        .header("origin", "https://app.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    let exposed = post.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-sql-statements"), "{exposed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allowed_origins_no_cors_header_is_sent() {
    let app = sqlite_app(|_| {}).await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("origin", "https://app.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    for (name, _) in response.headers() {
        assert!(!name.as_str().starts_with("access-control-"), "{name}");
        assert_ne!(name.as_str(), "vary");
    }
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_is_answered_wherever_get_is() {
    let app = sqlite_app(|_| {}).await;
    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/", 307),
        ("/metrics", 200),
    ] {
        let get = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let head = app
            .client
            .head(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), status, "GET {path}");
        assert_eq!(head.status(), status, "HEAD {path}");
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
}

db_test! {
    async fn connection_init_reads_the_credential_from_a_headers_object(app) {
        let bearer = app.bearer(seed::DEMO_CUSTOMER).await;
        for payload in [
            json!({ "headers": { "Authorization": bearer } }),
            json!({ "headers": { "authorization": bearer, "x-other": "1" } }),
        ] {
            let mut socket = connect(&app, "graphql-transport-ws").await;
            send(&mut socket, json!({ "type": "connection_init", "payload": payload })).await;
            assert_eq!(receive(&mut socket).await["type"], "connection_ack");
            send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ viewer { displayName } }" } })).await;
            assert_eq!(receive(&mut socket).await["payload"]["data"]["viewer"]["displayName"], "Casey Customer");
        }
        // A credential in a shape dishpatch does not read is refused, never ignored.
        for payload in [json!({ "authToken": bearer }), json!({ "headers": "Bearer x" })] {
            let mut socket = connect(&app, "graphql-transport-ws").await;
            send(&mut socket, json!({ "type": "connection_init", "payload": payload })).await;
            let reason = loop {
                match tokio::time::timeout(std::time::Duration::from_secs(10), socket.next()).await.unwrap() {
                    Some(Ok(Message::Close(Some(close)))) => {
                        assert_eq!(u16::from(close.code), 4403);
                        break close.reason.to_string();
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    other => panic!("expected a close, got {other:?}"),
                }
            };
            assert!(!reason.is_empty(), "the close says why");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_from_other_origins_are_refused_when_origins_are_configured() {
    let app = sqlite_app(|settings| {
        settings.cors_allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let upgrade = |origin: Option<&'static str>| {
        let mut request = upgrade_request(&app, "graphql-transport-ws");
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    match upgrade(Some("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("expected 403, got {other:?}"),
    }
    for origin in [Some("https://app.example"), None] {
        let (mut socket, _) = upgrade(origin).await.expect("an allowed upgrade");
        send(&mut socket, json!({ "type": "connection_init" })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    }
    // Without configured origins, any page may connect (the credential is a bearer token,
    // which a page elsewhere does not have).
    let open = sqlite_app(|_| {}).await;
    let mut request = upgrade_request(&open, "graphql-transport-ws");
    request
        .headers_mut()
        .insert("origin", "https://elsewhere.example".parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
}
