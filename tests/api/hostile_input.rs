//! What an attacker or a careless client sends: text no database can hold, forged cursors,
//! operation names that do not match, oversized WebSocket frames, floods of operations.
//! Every one is refused with a clear error and changes nothing.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use dishpatch::seed;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{Backend, GraphqlResponse, TestApp, db_test},
    orders::{available, order_input, roma_items},
    websocket::{close_code_skipping, connect, receive, send},
};

const NUL: &str = "a\u{0}b";

/// Asserts a refusal with `BAD_USER_INPUT` whose message names `what`.
fn assert_refused(response: &GraphqlResponse, what: &str) {
    assert_eq!(
        response.error_code(),
        "BAD_USER_INPUT",
        "{:#}",
        response.body
    );
    assert!(
        response.error_message().contains(what),
        "names {what}: {:#}",
        response.body
    );
    assert!(
        response.body.get("data").is_none_or(Value::is_null),
        "{:#}",
        response.body
    );
}

db_test! {
    async fn a_nul_character_in_any_text_input_is_refused_before_the_database(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let (restaurant, items) = roma_items(&app).await;
        let order = order_input(&restaurant, &available(&items, 1), "nul-test");
        let with = |path: &[&str]| {
            let mut input = order.clone();
            let mut at = &mut input;
            for key in &path[..path.len() - 1] {
                at = match key.parse::<usize>() {
                    Ok(index) => &mut at[index],
                    Err(_) => &mut at[*key],
                };
            }
            at[path[path.len() - 1]] = json!(NUL);
            input
        };
        let place = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } } }";
        // Through variables, named by their path.
        for (path, named) in [
            (&["deliveryAddress"][..], "$input.deliveryAddress"),
            (&["idempotencyKey"][..], "$input.idempotencyKey"),
            (&["lines", "0", "note"][..], "$input.lines.0.note"),
        ] {
            let response = app.graphql_as(Some(&customer), place, json!({ "input": with(path) })).await;
            assert_refused(&response, named);
        }
        // As literals in the document, named by their argument.
        let literal = "a\\u0000b";
        for (query, named) in [
            (format!("{{ restaurant(slug: \"{literal}\") {{ id }} }}"), "`slug`"),
            (format!("{{ restaurants(first: 1, filter: {{ search: \"{literal}\" }}) {{ totalCount }} }}"), "`filter.search`"),
            (format!("{{ restaurants(first: 1, filter: {{ cuisines: [\"x\", \"{literal}\"] }}) {{ totalCount }} }}"), "`filter.cuisines.1`"),
            (format!("mutation {{ rejectOrder(input: {{ orderId: \"T3JkZXI6MQ\", reason: \"{literal}\" }}) {{ order {{ id }} }} }}"), "`input.reason`"),
            (format!("mutation {{ cancelOrder(input: {{ orderId: \"T3JkZXI6MQ\", reason: \"{literal}\" }}) {{ order {{ id }} }} }}"), "`input.reason`"),
            (format!("mutation {{ createReview(input: {{ orderId: \"T3JkZXI6MQ\", rating: 5, body: \"{literal}\" }}) {{ review {{ id }} }} }}"), "`input.body`"),
            (format!("mutation {{ createApiToken(input: {{ name: \"{literal}\", scopes: [ORDERS_READ] }}) {{ secret }} }}"), "`input.name`"),
        ] {
            let response = app.graphql_as(Some(&customer), &query, json!({})).await;
            assert_refused(&response, named);
        }
        // Nothing was written.
        let orders = app.graphql_as(Some(&customer), "{ viewer { orders(first: 5) { totalCount } apiTokens { id } } }", json!({})).await;
        assert_eq!(orders.data()["viewer"]["apiTokens"], json!([]));
    }
}

/// A cursor as the server makes them, with `key` as its sort key.
fn cursor(ordering: &str, key: &Value) -> String {
    URL_SAFE_NO_PAD.encode(json!({ "o": ordering, "k": key, "id": 1 }).to_string())
}

db_test! {
    async fn a_cursor_whose_key_has_the_wrong_type_is_refused(app) {
        let query = "query($after: String, $field: RestaurantOrderField!, $direction: OrderDirection!) {
            restaurants(first: 2, after: $after, orderBy: { field: $field, direction: $direction },
                        filter: { near: { latitude: 52.52, longitude: 13.40 } }) { edges { node { name } } } }";
        for (field, direction, tag) in [("NAME", "ASC", "name:asc"), ("RATING", "DESC", "rating:desc"), ("DISTANCE", "ASC", "distance:asc")] {
            for key in [json!(5), json!("text"), json!(1e308), json!({ "nested": 1 }), json!(null), json!("a\u{0}b")] {
                let fits = matches!((field, &key), ("NAME", Value::String(s)) if !s.contains('\0'))
                    || (field == "RATING" && key.is_i64())
                    || (field == "DISTANCE" && key.is_f64());
                let response = app
                    .graphql(query, json!({ "after": cursor(tag, &key), "field": field, "direction": direction }))
                    .await;
                if fits {
                    response.data();
                } else {
                    assert_eq!(response.error_code(), "BAD_USER_INPUT", "{field} {key}: {:#}", response.body);
                }
            }
        }
        // A review cursor from before the year 1 (PostgreSQL: "timestamp out of range").
        let reviews = "query($after: String) { restaurants(first: 1) { edges { node { reviews(first: 1, after: $after) { edges { node { id } } } } } } }";
        for t in ["-4714-11-23T00:00:00Z", "+262142-01-01T00:00:00Z"] {
            let after = URL_SAFE_NO_PAD.encode(json!({ "t": t, "id": 1 }).to_string());
            let response = app.graphql(reviews, json!({ "after": after })).await;
            assert_eq!(response.error_code(), "BAD_USER_INPUT", "{t}: {:#}", response.body);
        }
        // A cursor string that is not one at all is named by a short prefix only.
        let long = "x".repeat(100_000);
        let response = app.graphql(query, json!({ "after": long, "field": "NAME", "direction": "ASC" })).await;
        assert_eq!(response.error_code(), "BAD_USER_INPUT");
        assert!(response.error_message().len() < 200, "{}", response.error_message());
    }
}

async fn sqlite_app() -> TestApp {
    TestApp::spawn(Backend::Sqlite, 1)
        .await
        .expect("SQLite is always available")
}

async fn post_graphql_response_json(app: &TestApp, body: &Value) -> GraphqlResponse {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("accept", "application/graphql-response+json")
        .json(body)
        .send()
        .await
        .unwrap();
    TestApp::read(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operation_selection_errors_are_bad_requests_that_echo_little() {
    let app = sqlite_app().await;
    let huge = "B".repeat(200);
    for (body, says) in [
        (
            json!({ "query": "query A { __typename }", "operationName": huge }),
            "no operation named",
        ),
        (
            json!({ "query": "query A { __typename } query C { __typename }" }),
            "several operations",
        ),
        (
            json!({ "query": "{ __typename }", "operationName": "A" }),
            "no operation named",
        ),
    ] {
        let response = post_graphql_response_json(&app, &body).await;
        assert_eq!(response.status, 400, "{:#}", response.body);
        assert!(
            response.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/graphql-response+json")
        );
        assert_eq!(response.error_code(), "BAD_REQUEST");
        assert!(
            response.error_message().contains(says),
            "{}",
            response.error_message()
        );
        assert!(
            response.error_message().len() < 120,
            "{}",
            response.error_message()
        );
        assert!(response.body.get("data").is_none());
    }
    let response = post_graphql_response_json(
        &app,
        &json!({ "query": "query A { __typename }", "operationName": "A".repeat(900_000) }),
    )
    .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.error_code(), "BAD_REQUEST");
    assert!(response.error_message().len() < 120);
    // The right name still runs.
    let named = post_graphql_response_json(
        &app,
        &json!({ "query": "query A { __typename } query C { __typename }", "operationName": "C" }),
    )
    .await;
    assert_eq!(named.data()["__typename"], "Query");
}

db_test! {
    async fn open_now_false_lists_only_the_restaurants_that_are_closed(app) {
        let count = |open: Value| {
            let app = &app;
            async move {
                let response = app.graphql(
                    "query($open: Boolean) { restaurants(first: 100, filter: { openNow: $open }) { totalCount edges { node { openNow } } } }",
                    json!({ "open": open }),
                ).await;
                let data = response.data()["restaurants"].clone();
                let flags: Vec<bool> = data["edges"].as_array().unwrap().iter().map(|e| e["node"]["openNow"].as_bool().unwrap()).collect();
                (data["totalCount"].as_u64().unwrap(), flags)
            }
        };
        let (all, _) = count(Value::Null).await;
        let (open, open_flags) = count(json!(true)).await;
        let (closed, closed_flags) = count(json!(false)).await;
        assert_eq!(open + closed, all);
        assert!(open > 0 && closed > 0, "the demo data has both: {open} open, {closed} closed");
        assert!(open_flags.iter().all(|&o| o));
        assert!(closed_flags.iter().all(|&o| !o));
    }
}

/// A raw WebSocket to `app` (graphql-transport-ws, acknowledged), for hand-made frames.
async fn raw_socket(app: &TestApp) -> tokio::net::TcpStream {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let port = app.address.rsplit(':').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let request = format!(
        "GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("HTTP/1.1 101"), "{line}");
    loop {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
    }
    stream
}

/// A masked client frame header (RFC 6455 §5.2) announcing `length` payload bytes.
fn frame_header(fin: bool, opcode: u8, length: u64) -> Vec<u8> {
    let mut header = vec![(u8::from(fin) << 7) | opcode];
    if length < 126 {
        header.push(0x80 | length as u8);
    } else if length <= 0xffff {
        header.push(0x80 | 0x7e);
        header.extend_from_slice(&(length as u16).to_be_bytes());
    } else {
        header.push(0x80 | 0x7f);
        header.extend_from_slice(&length.to_be_bytes());
    }
    header.extend_from_slice(&[0, 0, 0, 0]); // a zero mask leaves the payload as it is
    header
}

/// The close code the server sends on `stream`, read from its raw frames within 10 s.
async fn raw_close_code(stream: &mut tokio::net::TcpStream) -> u16 {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut buffer = [0_u8; 4096];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buffer))
            .await
            .expect("the server closes within 10 s")
            .unwrap_or(0);
        assert!(read > 0, "the connection ended without a close frame");
        seen.extend_from_slice(&buffer[..read]);
        // Server frames are unmasked: walk them to the close frame (opcode 8).
        let mut at = 0;
        while at + 2 <= seen.len() {
            let (opcode, short) = (seen[at] & 0x0f, usize::from(seen[at + 1] & 0x7f));
            let (length, start) = match short {
                126 if at + 4 <= seen.len() => (
                    usize::from(u16::from_be_bytes([seen[at + 2], seen[at + 3]])),
                    at + 4,
                ),
                126 | 127 => break,
                n => (n, at + 2),
            };
            if start + length > seen.len() {
                break;
            }
            if opcode == 8 {
                return u16::from_be_bytes([seen[start], seen[start + 1]]);
            }
            at = start + length;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_announcing_more_than_the_limit_closes_the_socket_with_1009_at_once() {
    let app = sqlite_app().await;
    let mut stream = raw_socket(&app).await;
    let init = br#"{"type":"connection_init"}"#;
    stream
        .write_all(&frame_header(true, 1, init.len() as u64))
        .await
        .unwrap();
    stream.write_all(init).await.unwrap();
    // 2^40 bytes announced; only a little is sent, and the server must not wait for the rest.
    stream
        .write_all(&frame_header(true, 1, 1 << 40))
        .await
        .unwrap();
    stream.write_all(&[b' '; 1024]).await.unwrap();
    assert_eq!(raw_close_code(&mut stream).await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_limit_in_continuation_frames_closes_with_1009() {
    let app = sqlite_app().await;
    let mut stream = raw_socket(&app).await;
    let chunk = vec![b' '; 40 * 1024];
    stream
        .write_all(&frame_header(false, 1, chunk.len() as u64))
        .await
        .unwrap();
    stream.write_all(&chunk).await.unwrap();
    stream
        .write_all(&frame_header(true, 0, chunk.len() as u64))
        .await
        .unwrap();
    let _ = stream.write_all(&chunk).await;
    assert_eq!(raw_close_code(&mut stream).await, 1009);
}

db_test! {
    async fn the_legacy_protocol_caps_operations_per_socket_like_the_current_one(app) {
        let (restaurant, _) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let mut socket = connect(&app, "graphql-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": owner } })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        // Subscriptions stay open, so each holds its place among the running operations.
        let subscription = "subscription($id: ID!) { restaurantOrders(restaurantId: $id) { id } }";
        for id in 0..100 {
            let start = json!({ "id": id.to_string(), "type": "start", "payload": { "query": subscription, "variables": { "id": restaurant } } });
            socket.send(Message::text(start.to_string())).await.unwrap();
        }
        send(&mut socket, json!({ "id": "one-too-many", "type": "start", "payload": { "query": "{ __typename }" } })).await;
        assert_eq!(close_code_skipping(&mut socket, &["data", "error", "complete"]).await, 4429);
    }
}

db_test! {
    async fn one_flooding_socket_does_not_starve_another_users_queries(app) {
        let (flooder, other) = (
            app.bearer(seed::DEMO_COURIER).await,
            app.bearer(seed::DEMO_CUSTOMER).await,
        );
        let heavy = "{ restaurants(first: 20) { edges { node { name menu { items { name price { amount } } } reviews(first: 10) { edges { node { body author { displayName } } } } } } } }";
        let mut readers = Vec::new();
        for protocol in ["graphql-transport-ws", "graphql-ws"] {
            let mut socket = connect(&app, protocol).await;
            send(
                &mut socket,
                json!({ "type": "connection_init", "payload": { "Authorization": flooder } }),
            )
            .await;
            assert_eq!(receive(&mut socket).await["type"], "connection_ack");
            let start = if protocol == "graphql-ws" {
                "start"
            } else {
                "subscribe"
            };
            // As many operations at once as a socket may run, sent without waiting.
            for id in 0..100 {
                let message =
                    json!({ "id": id.to_string(), "type": start, "payload": { "query": heavy } });
                socket
                    .feed(Message::text(message.to_string()))
                    .await
                    .unwrap();
            }
            socket.flush().await.unwrap();
            // The flooder reads its answers as they come, each socket on its own (a client
            // that stops reading for longer than the send timeout is cut off).
            readers.push(tokio::spawn(async move {
                let mut answered = 0;
                while answered < 100 {
                    let message = receive(&mut socket).await;
                    match message["type"].as_str() {
                        Some("next" | "data") => {
                            let code = &message["payload"]["errors"][0]["extensions"]["code"];
                            assert!(code.is_null() || code == "RATE_LIMITED", "{message}");
                            answered += 1;
                        }
                        Some("complete") => {}
                        other => panic!("unexpected {other:?}: {message}"),
                    }
                }
                answered
            }));
        }
        // Meanwhile another user's plain queries are answered, not refused or timed out.
        for _ in 0..10 {
            let response = app
                .graphql_as(
                    Some(&other),
                    "{ restaurant(slug: \"trattoria-roma\") { name } }",
                    json!({}),
                )
                .await;
            assert_eq!(response.status, 200, "{:#}", response.body);
            assert_eq!(response.data()["restaurant"]["name"], "Trattoria Roma");
        }
        // And every operation of the flood is answered in turn: run, or refused once the
        // flooder's own budget is spent.
        for reader in readers {
            assert_eq!(reader.await.unwrap(), 100);
        }
    }
}

db_test! {
    async fn a_menu_counts_its_estimated_length_so_aliased_menus_cost_what_they_return(app) {
        let aliases: Vec<String> = (0..30)
            .map(|i| format!("a{i}: restaurants(first: 100) {{ edges {{ node {{ menu {{ items {{ name description dietaryTags }} }} }} }} }}"))
            .collect();
        let response = app
            .graphql(&format!("{{ {} }}", aliases.join(" ")), json!({}))
            .await;
        assert_eq!(response.error_code(), "QUERY_TOO_COMPLEX");
        // 30 aliases x (100 restaurants x (30 estimated items x 3 fields + 1) + ...), not 18,030.
        assert!(
            response.error_message().contains("complexity is 282030"),
            "{}",
            response.error_message()
        );
        // One menu costs its estimated length too, and still runs.
        let one = app
            .graphql(
                "{ restaurant(slug: \"trattoria-roma\") { menu { categories { items { name } } } } }",
                json!({}),
            )
            .await;
        one.data();
        // restaurant 1 + menu 1 + categories (5 x (items (6 x name 1) + 1) + 1)
        assert_eq!(
            one.body["extensions"]["cost"]["requested"],
            1 + 1 + (5 * (6 + 1) + 1)
        );
    }
}

db_test! {
    async fn orders_under_a_fan_out_of_parents_cost_a_constant_number_of_statements(app) {
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        // Found by the fuzzer: ~900 restaurants' orders, each a page and a count of its own
        // statements, took the whole pool for 10 s and starved every other request. Every
        // parent's page and count is now a key of one loader: the fan-out costs what the
        // relation levels cost, and its pages are the dashboard's.
        let fan_out = "{ restaurant(slug: \"casa-oaxaca\") { menu { categories { items { category { items { restaurant {
            menu { categories { restaurant { orders(first: 2) { totalCount edges { node { id status } } } } } } } } } } } } } }";
        let response = app.graphql_as(Some(&admin), fan_out, json!({})).await;
        let dashboard = app
            .graphql_as(Some(&admin), "{ restaurant(slug: \"casa-oaxaca\") { orders(first: 2) { totalCount edges { node { id status } } } } }", json!({}))
            .await;
        let expected = &dashboard.data()["restaurant"]["orders"];
        assert!(expected["totalCount"].as_u64().is_some());
        let mut pages = 0;
        for category in response.data()["restaurant"]["menu"]["categories"].as_array().unwrap() {
            for item in category["items"].as_array().unwrap() {
                for inner in item["category"]["items"].as_array().unwrap() {
                    for category in inner["restaurant"]["menu"]["categories"].as_array().unwrap() {
                        assert_eq!(&category["restaurant"]["orders"], expected);
                        pages += 1;
                    }
                }
            }
        }
        assert!(pages > 100, "a fan-out of {pages} pages");
        // restaurant, categories, items, their categories, those categories' items, their
        // restaurants, categories, their restaurants, then the orders and their count.
        assert!(
            response.sql_statements() <= 12,
            "{} statements for {pages} pages",
            response.sql_statements()
        );
    }
}

db_test! {
    async fn no_error_echoes_more_than_a_short_prefix_of_what_the_client_sent(app) {
        let huge = "Z".repeat(500_000);
        let cases = [
            // A variable of the wrong enum value, a field name, an argument value.
            ("query($f: RestaurantOrderField!) { restaurants(first: 1, orderBy: { field: $f }) { totalCount } }".to_owned(), json!({ "f": huge })),
            (format!("{{ {} }}", "y".repeat(20_000)), json!({})),
            ("query($id: ID!) { node(id: $id) { id } }".to_owned(), json!({ "id": huge })),
            ("query($n: Int!) { restaurants(first: $n) { totalCount } }".to_owned(), json!({ "n": huge })),
        ];
        for (query, variables) in cases {
            let response = app.graphql(&query, variables).await;
            let text = response.body.to_string();
            assert!(text.len() < 2_000, "an answer of {} bytes: {}", text.len(), &text[..300]);
            assert!(response.body["errors"][0]["extensions"]["code"].is_string(), "{}", &text[..300]);
        }
    }
}
