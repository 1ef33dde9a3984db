//! Live updates read from the durable order event log: every committed change once, in
//! version order, with the event that made it; one read per change however many follow it;
//! changes whose doorbell was lost, and transactions that commit out of id order, still
//! arrive.

use std::time::Duration;

use dishpatch::seed;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait, TransactionTrait};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, db_test},
    orders::{act, available, order_input, place, roma_items},
    websocket::{Socket, connect, receive, send},
};

/// A socket signed in as `who`, following `query` (with `variables`) under the id `sid`.
pub(crate) async fn follow(
    app: &TestApp,
    who: &str,
    sid: &str,
    query: &str,
    variables: Value,
) -> Socket {
    let mut socket = connect(app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": who } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": sid, "type": "subscribe", "payload": {
        "query": query, "variables": variables } }),
    )
    .await;
    socket
}

/// The data of the next `next` message for `field`.
pub(crate) async fn next(socket: &mut Socket, field: &str) -> Value {
    let message = receive(socket).await;
    assert_eq!(message["type"], "next", "{message}");
    assert!(message["payload"]["errors"].is_null(), "{message}");
    message["payload"]["data"][field].clone()
}

const KITCHEN: &str = "subscription($r: ID!) { restaurantOrders(restaurantId: $r) {
    id status version lastEvent { kind fromStatus toStatus version } } }";

const CUSTOMER: &str = "subscription($id: ID!) { orderUpdated(orderId: $id) {
    status version lastEvent { kind fromStatus toStatus version } } }";

/// What a client rebuilds from one update: (status, version, the event's from → to).
fn step(update: &Value) -> (String, i64, String) {
    assert_eq!(
        update["version"], update["lastEvent"]["version"],
        "{update}"
    );
    assert_eq!(
        update["status"], update["lastEvent"]["toStatus"],
        "{update}"
    );
    (
        update["status"].as_str().unwrap().to_owned(),
        update["version"].as_i64().unwrap(),
        format!(
            "{} -> {}",
            update["lastEvent"]["fromStatus"].as_str().unwrap_or("none"),
            update["lastEvent"]["toStatus"].as_str().unwrap()
        ),
    )
}

db_test! {
    /// Staff accepting, starting and finishing an order back to back: the kitchen and the
    /// customer each see every status once, in order, with the event that made it.
    async fn back_to_back_moves_arrive_once_each_in_version_order(app) {
        let (restaurant, items) = roma_items(&app).await;
        let (owner, customer) = (app.bearer(seed::DEMO_OWNER).await, app.bearer(seed::DEMO_CUSTOMER).await);
        let mut kitchen = follow(&app, &owner, "k", KITCHEN, json!({ "r": restaurant })).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "back-to-back")).await;
        let id = placed["order"]["id"].as_str().unwrap().to_owned();
        let mut follower = follow(&app, &customer, "o", CUSTOMER, json!({ "id": id })).await;
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Sent without waiting for any update in between.
        for mutation in ["acceptOrder", "startPreparingOrder", "markOrderReady"] {
            let moved = act(&app, &owner, mutation, json!({ "orderId": id })).await;
            assert_eq!(moved["userErrors"], json!([]), "{mutation}");
        }
        let expected = [
            ("PLACED", 1, "none -> PLACED"),
            ("ACCEPTED", 2, "PLACED -> ACCEPTED"),
            ("PREPARING", 3, "ACCEPTED -> PREPARING"),
            ("READY_FOR_PICKUP", 4, "PREPARING -> READY_FOR_PICKUP"),
        ]
        .map(|(status, version, event)| (status.to_owned(), version, event.to_owned()));
        let mut seen = Vec::new();
        for _ in 0..4 {
            let update = next(&mut kitchen, "restaurantOrders").await;
            assert_eq!(update["id"], id.as_str());
            seen.push(step(&update));
        }
        assert_eq!(seen, expected);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(step(&next(&mut follower, "orderUpdated").await));
        }
        assert_eq!(seen, expected[1..]);

        // Nothing more was sent to either: the next message is the next change.
        let courier = app.bearer(seed::DEMO_COURIER).await;
        act(&app, &courier, "claimDelivery", json!({ "orderId": id })).await;
        let claimed = next(&mut kitchen, "restaurantOrders").await;
        assert_eq!(claimed["lastEvent"], json!({ "kind": "DELIVERY_CLAIMED", "fromStatus": "READY_FOR_PICKUP", "toStatus": "READY_FOR_PICKUP", "version": 5 }));
        assert_eq!(next(&mut follower, "orderUpdated").await["version"], 5);
    }
}

db_test! {
    /// A change committed by another process whose doorbell never rang (a lost `NOTIFY`, a
    /// replica that crashed right after its commit) still reaches subscribers: the log is the
    /// source, looked at every second.
    async fn a_change_whose_doorbell_was_lost_still_arrives(app) {
        let (restaurant, items) = roma_items(&app).await;
        let (owner, customer) = (app.bearer(seed::DEMO_OWNER).await, app.bearer(seed::DEMO_CUSTOMER).await);
        let mut kitchen = follow(&app, &owner, "k", KITCHEN, json!({ "r": restaurant })).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "quiet")).await;
        let id = placed["order"]["id"].as_str().unwrap().to_owned();
        // The placing reaches the kitchen first (however late the reader gets to it).
        let first = next(&mut kitchen, "restaurantOrders").await;
        assert_eq!(step(&first), ("PLACED".to_owned(), 1, "none -> PLACED".to_owned()));
        let mut follower = follow(&app, &customer, "o", CUSTOMER, json!({ "id": id })).await;
        tokio::time::sleep(Duration::from_millis(300)).await;

        // What a move writes, in one transaction, and no announcement at all.
        let order_id = dishpatch::graphql::relay::GlobalId::decode_as(
            &async_graphql::ID(id.clone()),
            dishpatch::graphql::relay::NodeKind::Order,
        )
        .unwrap();
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let txn = app.db.begin().await.unwrap();
        let order = entities::order::Entity::find_by_id(order_id).one(&txn).await.unwrap().unwrap();
        let now = chrono::Utc::now();
        let mut moved: entities::order::ActiveModel = order.into();
        moved.status = Set(entities::OrderStatus::Accepted);
        moved.version = Set(2);
        moved.updated_at = Set(now);
        moved.update(&txn).await.unwrap();
        entities::order_event::ActiveModel {
            order_id: Set(order_id),
            actor_id: Set(Some(owner_id)),
            from_status: Set(Some(entities::OrderStatus::Placed)),
            to_status: Set(entities::OrderStatus::Accepted),
            reason: Set(None),
            created_at: Set(now),
            version: Set(2),
            kind: Set(entities::OrderEventKind::StatusChanged),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .unwrap();
        txn.commit().await.unwrap();

        let update = next(&mut follower, "orderUpdated").await;
        assert_eq!(step(&update), ("ACCEPTED".to_owned(), 2, "PLACED -> ACCEPTED".to_owned()));
        let update = next(&mut kitchen, "restaurantOrders").await;
        assert_eq!(step(&update), ("ACCEPTED".to_owned(), 2, "PLACED -> ACCEPTED".to_owned()));
    }
}

/// A server that does not send webhooks: its sender's own looks at the queue would count in
/// the process-wide statement total the fan-out test measures.
async fn without_webhook_sender(backend: crate::helpers::Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, |settings| settings.webhooks.send = false).await
}

db_test! {
    /// Fifty people following one restaurant: one change costs the same few statements as for
    /// one follower (each process reads a change once and checks access in memory).
    setup = without_webhook_sender,
    async fn one_change_is_read_once_however_many_follow_it(app) {
        let (restaurant, items) = roma_items(&app).await;
        let (owner, customer) = (app.bearer(seed::DEMO_OWNER).await, app.bearer(seed::DEMO_CUSTOMER).await);
        let mut sockets = Vec::new();
        for _ in 0..50 {
            sockets.push(follow(&app, &owner, "k", KITCHEN, json!({ "r": restaurant })).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "many-eyes")).await;
        let id = placed["order"]["id"].as_str().unwrap().to_owned();
        for socket in &mut sockets {
            next(socket, "restaurantOrders").await;
        }
        // Now one move, counted from the moment before it until every follower has it.
        let before = dishpatch::metrics::METRICS.sql_statements.get();
        let started = std::time::Instant::now();
        let moved = app
            .graphql_as(Some(&owner), "mutation($i: OrderInput!) { acceptOrder(input: $i) { userErrors { code } } }", json!({ "i": { "orderId": id } }))
            .await;
        let request = moved.sql_statements();
        for socket in &mut sockets {
            let update = next(socket, "restaurantOrders").await;
            assert_eq!(update["status"], "ACCEPTED");
        }
        let spent = dishpatch::metrics::METRICS.sql_statements.get() - before;
        // The mutation's own statements, one read of the change (events, orders, deliveries,
        // staff), a look at the log for each doorbell (two on PostgreSQL: its own and the
        // notification's) and the reader's idle look once a second, each look with its read
        // of access changes (revoked tokens, changed roles: two statements); nothing per
        // follower (the update carries its `lastEvent`). Signing the caller in (their user and
        // staff rows) happens before the request's own count starts. Before, each follower
        // read the order: 50 or more.
        let looks = 2 + started.elapsed().as_secs() + 1;
        let allowed = u64::from(request) + 4 + looks * (1 + 2) + 3;
        assert!(
            spent <= allowed,
            "{spent} statements for one change with 50 followers ({request} by the mutation; {allowed} allowed)"
        );
    }
}

/// PostgreSQL takes an id when a row is inserted, not when its transaction commits: a change
/// that commits after a later-numbered one is still delivered (the reader keeps the gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_commits_after_a_later_numbered_one_still_arrives() {
    let Some(app) = TestApp::spawn(Backend::Postgres, 1).await else {
        return;
    };
    let (restaurant, items) = roma_items(&app).await;
    let (owner, customer) = (
        app.bearer(seed::DEMO_OWNER).await,
        app.bearer(seed::DEMO_CUSTOMER).await,
    );
    let mut kitchen = follow(&app, &owner, "k", KITCHEN, json!({ "r": restaurant })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ids = Vec::new();
    for key in ["gap-1", "gap-2"] {
        let placed = place(
            &app,
            &customer,
            order_input(&restaurant, &available(&items, 1), key),
        )
        .await;
        ids.push(placed["order"]["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let placed = next(&mut kitchen, "restaurantOrders").await;
        assert_eq!(
            (
                placed["id"].as_str().unwrap(),
                placed["status"].as_str().unwrap()
            ),
            (id.as_str(), "PLACED")
        );
    }

    // A transaction that takes the next event id and holds it while a later one commits.
    let slow = app.db.begin().await.unwrap();
    let order_id = |id: &str| {
        dishpatch::graphql::relay::GlobalId::decode_as(
            &async_graphql::ID(id.to_owned()),
            dishpatch::graphql::relay::NodeKind::Order,
        )
        .unwrap()
    };
    let owner_id = app.user_id(seed::DEMO_OWNER).await;
    let accept = |order: i64| {
        format!(
            "WITH moved AS (UPDATE orders SET status = 'ACCEPTED', version = 2 WHERE id = {order} AND version = 1 RETURNING id) \
             INSERT INTO order_events (order_id, actor_id, from_status, to_status, created_at, version, kind) \
             SELECT id, {owner_id}, 'PLACED', 'ACCEPTED', now(), 2, 'STATUS_CHANGED' FROM moved"
        )
    };
    slow.execute_unprepared(&accept(order_id(&ids[0])))
        .await
        .unwrap();
    let moved = act(&app, &owner, "acceptOrder", json!({ "orderId": ids[1] })).await;
    assert_eq!(moved["userErrors"], json!([]));
    let update = next(&mut kitchen, "restaurantOrders").await;
    assert_eq!(
        (
            update["id"].as_str().unwrap(),
            update["status"].as_str().unwrap()
        ),
        (ids[1].as_str(), "ACCEPTED")
    );

    tokio::time::sleep(Duration::from_millis(1500)).await;
    slow.commit().await.unwrap();
    let update = next(&mut kitchen, "restaurantOrders").await;
    assert_eq!(
        (
            update["id"].as_str().unwrap(),
            update["status"].as_str().unwrap()
        ),
        (ids[0].as_str(), "ACCEPTED")
    );
    assert_eq!(
        step(&update),
        ("ACCEPTED".to_owned(), 2, "PLACED -> ACCEPTED".to_owned())
    );
}

db_test! {
    /// A subscriber that stops reading while its courier moves: the server keeps only a
    /// bounded backlog for it (a fixed kernel send buffer, a few queued messages), not the
    /// megabytes an autotuned socket would take, and then closes the connection.
    async fn a_subscriber_that_never_reads_gets_a_bounded_backlog_then_is_closed(app) {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;

        let id = crate::orders::ready_order(&app, "never-reads").await;
        let courier = app.bearer(seed::DEMO_COURIER).await;
        act(&app, &courier, "claimDelivery", json!({ "orderId": id })).await;
        act(&app, &courier, "confirmPickup", json!({ "orderId": id })).await;

        // A client whose own receive buffer is small: what it can read later is what the
        // server held for it.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        let address = app.address.trim_start_matches("http://").parse().unwrap();
        let stream = socket.connect(address).await.unwrap();
        let request = crate::websocket::upgrade_request(&app, "graphql-transport-ws");
        let (mut ws, _) = tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream)).await.unwrap();
        send(&mut ws, json!({ "type": "connection_init", "payload": { "Authorization": app.bearer(seed::DEMO_CUSTOMER).await } })).await;
        assert_eq!(receive(&mut ws).await["type"], "connection_ack");
        for n in 0..50 {
            send(&mut ws, json!({ "id": format!("s{n}"), "type": "subscribe", "payload": {
                "query": "subscription($id: ID!) { courierLocation(orderId: $id) { status claimedAt pickedUpAt lastLocation { latitude longitude } courier { displayName } } }",
                "variables": { "id": id } } })).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;

        // 150 positions for 50 subscriptions: some 7,500 messages, 1.5 MB and more.
        for step in 1..=150 {
            let moved = app.graphql_as(Some(&courier),
                "mutation($id: ID!, $lat: Float!) { updateCourierLocation(input: { orderId: $id, location: { latitude: $lat, longitude: 13.4 } }) { userErrors { code } } }",
                json!({ "id": id, "lat": 52.0 + f64::from(step) / 10_000.0 })).await;
            assert_eq!(moved.data()["updateCourierLocation"]["userErrors"], json!([]));
        }
        // Longer than the send timeout (10 s) and the ping timeout (15 s).
        tokio::time::sleep(Duration::from_secs(18)).await;

        let (mut bytes, mut ended) = (0, false);
        loop {
            match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => bytes += text.len(),
                Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => {
                    ended = true;
                    break;
                }
                Ok(Some(Ok(_))) => {}
                Err(_) => break,
            }
        }
        assert!(ended, "the server closed the connection of a client that stopped reading");
        assert!(bytes > 0, "it had been sent something");
        assert!(bytes < 1_000_000, "{bytes} bytes were held for a client that did not read");
    }
}
