//! The order lifecycle: placing, moving, delivering, reviewing, following live; races;
//! who may see and do what.

use dishpatch::seed;
use futures_util::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, db_test, decode_id, node_ids, node_with_id},
    websocket::{connect, receive, send},
};

const PLACE: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
    order { id status subtotal { amount } deliveryFee { amount } total { amount } lines { name quantity unitPrice { amount } lineTotal { amount } } }
    userErrors { field message code } } }";

const ORDER_FIELDS: &str = "order { id status delivery { status courier { displayName } } } userErrors { field message code }";

/// Menu items of Trattoria Roma (open around the clock, staffed by the demo owner).
pub(crate) async fn roma_items(app: &TestApp) -> (String, Vec<(String, bool, String)>) {
    let response = app
        .graphql(
            "{ restaurant(slug: \"trattoria-roma\") { id menu { items { id available price { amount } } } } }",
            json!({}),
        )
        .await;
    let restaurant = response.data()["restaurant"].clone();
    let items = restaurant["menu"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["id"].as_str().unwrap().to_owned(),
                item["available"].as_bool().unwrap(),
                item["price"]["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (restaurant["id"].as_str().unwrap().to_owned(), items)
}

pub(crate) fn available(items: &[(String, bool, String)], n: usize) -> Vec<String> {
    items
        .iter()
        .filter(|(_, ok, _)| *ok)
        .take(n)
        .map(|(id, _, _)| id.clone())
        .collect()
}

pub(crate) fn order_input(restaurant: &str, items: &[String], key: &str) -> Value {
    json!({
        "restaurantId": restaurant,
        "lines": items.iter().enumerate().map(|(i, id)| json!({ "menuItemId": id, "quantity": i + 1 })).collect::<Vec<_>>(),
        "deliveryAddress": "Torstrasse 1, Berlin",
        "deliveryLocation": { "latitude": 52.53, "longitude": 13.40 },
        "idempotencyKey": key,
    })
}

pub(crate) async fn place(app: &TestApp, who: &str, input: Value) -> Value {
    let response = app
        .graphql_as(Some(who), PLACE, json!({ "input": input }))
        .await;
    response.data()["placeOrder"].clone()
}

pub(crate) async fn act(app: &TestApp, who: &str, mutation: &str, input: Value) -> Value {
    let query = format!(
        "mutation($input: {}!) {{ {mutation}(input: $input) {{ {ORDER_FIELDS} }} }}",
        input_type(mutation)
    );
    let response = app
        .graphql_as(Some(who), &query, json!({ "input": input }))
        .await;
    response.data()[mutation].clone()
}

fn input_type(mutation: &str) -> &'static str {
    match mutation {
        "rejectOrder" | "cancelOrder" => "OrderReasonInput",
        _ => "OrderInput",
    }
}

async fn courier_emails(app: &TestApp) -> Vec<String> {
    let couriers = entities::user::Entity::find()
        .filter(entities::user::Column::Email.like("courier%@example.test"))
        .all(&app.db)
        .await
        .unwrap();
    couriers.into_iter().filter_map(|u| u.email).collect()
}

/// An order of the demo customer at Trattoria Roma, marked ready by the owner.
pub(crate) async fn ready_order(app: &TestApp, key: &str) -> String {
    let (restaurant, items) = roma_items(app).await;
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    let owner = app.bearer(seed::DEMO_OWNER).await;
    let placed = place(
        app,
        &customer,
        order_input(&restaurant, &available(&items, 1), key),
    )
    .await;
    let id = placed["order"]["id"].as_str().unwrap().to_owned();
    for mutation in ["acceptOrder", "startPreparingOrder", "markOrderReady"] {
        let moved = act(app, &owner, mutation, json!({ "orderId": id })).await;
        assert_eq!(moved["userErrors"], json!([]), "{mutation}");
    }
    id
}

/// The code of a refused subscription: an `error` message, or a `next` carrying only errors.
fn refusal_code(message: &Value) -> String {
    let errors = match message["type"].as_str() {
        Some("error") => &message["payload"],
        Some("next") if message["payload"]["data"].is_null() => &message["payload"]["errors"],
        _ => panic!("expected a refusal: {message}"),
    };
    errors[0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The next `orderUpdated` message: status and delivery status.
async fn next_status(socket: &mut crate::websocket::Socket) -> (String, Value) {
    let message = receive(socket).await;
    assert_eq!(
        (message["type"].as_str(), message["id"].as_str()),
        (Some("next"), Some("o")),
        "{message}"
    );
    let order = &message["payload"]["data"]["orderUpdated"];
    (
        order["status"].as_str().unwrap().to_owned(),
        order["delivery"]["status"].clone(),
    )
}

db_test! {
    async fn an_order_goes_from_placed_to_reviewed_and_its_customer_sees_every_change_live(app) {
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let courier = app.bearer(seed::DEMO_COURIER).await;

        let chosen = available(&items, 2);
        let placed = place(&app, &customer, order_input(&restaurant, &chosen, "journey-1")).await;
        assert_eq!(placed["userErrors"], json!([]));
        let order = placed["order"].clone();
        let id = order["id"].as_str().unwrap().to_owned();
        assert_eq!(order["status"], "PLACED");
        // Prices come from the menu: line totals add up to the subtotal, plus the fee.
        let cents = |v: &Value| (v.as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
        let lines = order["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 2);
        let sum: i64 = lines.iter().map(|l| cents(&l["lineTotal"]["amount"])).sum();
        assert_eq!(sum, cents(&order["subtotal"]["amount"]));
        assert_eq!(cents(&order["total"]["amount"]), sum + cents(&order["deliveryFee"]["amount"]));

        // The customer follows the order live, and the customer and staff the courier.
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": customer } })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, json!({ "id": "o", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { orderUpdated(orderId: $id) { status delivery { status } } }",
            "variables": { "id": id } } })).await;
        send(&mut socket, json!({ "id": "c", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { courierLocation(orderId: $id) { lastLocation { latitude longitude } } }",
            "variables": { "id": id } } })).await;
        // Subscriptions start before the first change is published.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;

        // Each change reaches the subscriber before the next one is made, as when people act.
        for (mutation, status) in [
            ("acceptOrder", "ACCEPTED"),
            ("startPreparingOrder", "PREPARING"),
            ("markOrderReady", "READY_FOR_PICKUP"),
        ] {
            let moved = act(&app, &owner, mutation, json!({ "orderId": id })).await;
            assert_eq!(moved["userErrors"], json!([]), "{mutation}");
            assert_eq!(next_status(&mut socket).await.0, status);
        }
        let claimed = act(&app, &courier, "claimDelivery", json!({ "orderId": id })).await;
        assert_eq!(claimed["order"]["delivery"]["status"], "CLAIMED");
        assert_eq!(next_status(&mut socket).await, ("READY_FOR_PICKUP".to_owned(), json!("CLAIMED")), "the claim is a change too");
        let picked = act(&app, &courier, "confirmPickup", json!({ "orderId": id })).await;
        assert_eq!(picked["order"]["status"], "PICKED_UP");
        assert_eq!(next_status(&mut socket).await, ("PICKED_UP".to_owned(), json!("PICKED_UP")));
        let located = app.graphql_as(Some(&courier),
            "mutation($id: ID!) { updateCourierLocation(input: { orderId: $id, location: { latitude: 52.525, longitude: 13.41 } }) { delivery { lastLocation { latitude } } userErrors { code } } }",
            json!({ "id": id })).await;
        assert_eq!(located.data()["updateCourierLocation"]["delivery"]["lastLocation"]["latitude"], 52.525);
        let moved = receive(&mut socket).await;
        assert_eq!(moved["id"], "c", "{moved}");
        assert_eq!(moved["payload"]["data"]["courierLocation"]["lastLocation"]["longitude"], 13.41);
        let delivered = act(&app, &courier, "confirmDelivery", json!({ "orderId": id })).await;
        assert_eq!(delivered["order"]["status"], "DELIVERED");
        assert_eq!(next_status(&mut socket).await, ("DELIVERED".to_owned(), json!("DELIVERED")));

        let before = app.graphql("{ restaurant(slug: \"trattoria-roma\") { rating { count } } }", json!({})).await;
        let count_before = before.data()["restaurant"]["rating"]["count"].as_i64().unwrap();
        let review = app.graphql_as(Some(&customer),
            "mutation($id: ID!) { createReview(input: { orderId: $id, rating: 5, body: \"Perfect\" }) { review { rating author { displayName } } userErrors { code } } }",
            json!({ "id": id })).await;
        assert_eq!(review.data()["createReview"]["review"]["author"]["displayName"], "Casey Customer");
        let again = app.graphql_as(Some(&customer),
            "mutation($id: ID!) { createReview(input: { orderId: $id, rating: 1 }) { userErrors { code } } }",
            json!({ "id": id })).await;
        assert_eq!(again.data()["createReview"]["userErrors"][0]["code"], "ALREADY_REVIEWED");
        let after = app.graphql("{ restaurant(slug: \"trattoria-roma\") { rating { count } } }", json!({})).await;
        assert_eq!(after.data()["restaurant"]["rating"]["count"].as_i64().unwrap(), count_before + 1);

        // Every status has the event that explains it.
        let history = app.graphql_as(Some(&customer),
            "query($id: ID!) { order(id: $id) { status version events { kind version fromStatus toStatus actor { displayName } } lastEvent { version toStatus } review { rating } } }",
            json!({ "id": id })).await;
        let history = history.data()["order"].clone();
        let events = history["events"].as_array().unwrap();
        let path: Vec<&str> = events.iter().map(|e| e["toStatus"].as_str().unwrap()).collect();
        assert_eq!(path, ["PLACED", "ACCEPTED", "PREPARING", "READY_FOR_PICKUP", "READY_FOR_PICKUP", "PICKED_UP", "DELIVERED"]);
        assert!(events.windows(2).all(|w| w[1]["fromStatus"] == w[0]["toStatus"]));
        // The claim is an event like every other change, and each change made one version.
        assert_eq!(events[4]["kind"], "DELIVERY_CLAIMED");
        assert_eq!(events[4]["actor"]["displayName"], "Cory Courier");
        assert!(events.iter().enumerate().filter(|(i, _)| *i != 4).all(|(_, e)| e["kind"] == "STATUS_CHANGED"));
        let versions: Vec<i64> = events.iter().map(|e| e["version"].as_i64().unwrap()).collect();
        assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(history["version"], 7);
        assert_eq!(history["lastEvent"], json!({ "version": 7, "toStatus": "DELIVERED" }));
        assert_eq!(events[1]["actor"]["displayName"], "Olivia Owner");
        assert_eq!(history["review"]["rating"], 5);
    }
}

db_test! {
    async fn twenty_concurrent_orders_with_one_key_make_one_order(app) {
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let input = order_input(&restaurant, &available(&items, 2), "same-key");
        let attempts = (0..20).map(|_| place(&app, &customer, input.clone()));
        let results = join_all(attempts).await;
        let ids: std::collections::HashSet<String> = results
            .iter()
            .map(|r| {
                assert_eq!(r["userErrors"], json!([]), "{r}");
                r["order"]["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1, "every retry answers with the one order");
        let stored = entities::order::Entity::find()
            .filter(entities::order::Column::IdempotencyKey.eq("same-key"))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(stored, 1);

        let mut other = input.clone();
        other["lines"][0]["quantity"] = json!(7);
        let reused = place(&app, &customer, other).await;
        assert_eq!(reused["userErrors"][0]["code"], "IDEMPOTENCY_KEY_REUSED");
        assert_eq!(reused["order"], Value::Null);
    }
}

db_test! {
    async fn of_two_couriers_claiming_one_order_exactly_one_wins(app) {
        let id = ready_order(&app, "claim-race").await;
        let couriers = courier_emails(&app).await;
        let first = app.bearer(&couriers[0]).await;
        let second = app.bearer(&couriers[1]).await;
        let (a, b) = tokio::join!(
            act(&app, &first, "claimDelivery", json!({ "orderId": id })),
            act(&app, &second, "claimDelivery", json!({ "orderId": id })),
        );
        let winners = [&a, &b].iter().filter(|r| r["userErrors"] == json!([])).count();
        assert_eq!(winners, 1, "{a} {b}");
        let loser = if a["userErrors"] == json!([]) { &b } else { &a };
        assert_eq!(loser["userErrors"][0]["code"], "ALREADY_CLAIMED");
        let deliveries = entities::delivery::Entity::find().count(&app.db).await.unwrap();
        let seeded = entities::order::Entity::find()
            .filter(entities::order::Column::Status.is_in([entities::OrderStatus::PickedUp, entities::OrderStatus::Delivered]))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(deliveries, seeded + 1);
    }
}

db_test! {
    async fn a_cancel_racing_an_accept_leaves_one_consistent_outcome(app) {
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        for round in 0..5 {
            let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), &format!("race-{round}"))).await;
            let id = placed["order"]["id"].as_str().unwrap().to_owned();
            let (cancel, accept) = tokio::join!(
                act(&app, &customer, "cancelOrder", json!({ "orderId": id, "reason": "changed my mind" })),
                act(&app, &owner, "acceptOrder", json!({ "orderId": id })),
            );
            let cancelled = cancel["userErrors"] == json!([]);
            let accepted = accept["userErrors"] == json!([]);
            assert!(cancelled ^ accepted, "exactly one wins: {cancel} {accept}");
            let order = app.graphql_as(Some(&customer), "query($id: ID!) { order(id: $id) { status events { toStatus } } }", json!({ "id": id })).await;
            let order = order.data()["order"].clone();
            let expected = if cancelled { "CANCELLED" } else { "ACCEPTED" };
            assert_eq!(order["status"], expected);
            assert_eq!(order["events"], json!([{ "toStatus": "PLACED" }, { "toStatus": expected }]));
        }
    }
}

db_test! {
    async fn strangers_cannot_read_change_or_follow_an_order(app) {
        let id = ready_order(&app, "private").await;
        let stranger_email = entities::user::Entity::find()
            .filter(entities::user::Column::Email.like("user%@example.test"))
            .one(&app.db).await.unwrap().unwrap().email.unwrap();
        let stranger = app.bearer(&stranger_email).await;
        let other_owner = app.bearer("user5@example.test").await; // owner of another restaurant
        for who in [&stranger, &other_owner] {
            let read = app.graphql_as(Some(who), "query($id: ID!) { order(id: $id) { id lastEvent { reason } } node(id: $id) { id } }", json!({ "id": id })).await;
            assert_eq!(read.data()["order"], Value::Null);
            assert_eq!(read.data()["node"], Value::Null);
            let changed = act(&app, who, "cancelOrder", json!({ "orderId": id })).await;
            assert_eq!(changed["userErrors"][0]["code"], "NOT_FOUND");
        }
        let anonymous = app.graphql_as(None, "query($id: ID!) { order(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(anonymous.error_code(), "UNAUTHENTICATED");
        let anonymous_node = app.graphql_as(None, "query($id: ID!) { node(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(anonymous_node.data()["node"], Value::Null);

        // The customer sees it but cannot act as the restaurant.
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let forbidden = app.graphql_as(Some(&customer), &format!("mutation($input: OrderInput!) {{ markOrderReady(input: $input) {{ {ORDER_FIELDS} }} }}"), json!({ "input": { "orderId": id } })).await;
        assert_eq!(forbidden.error_code(), "FORBIDDEN");
        // Another restaurant's staff cannot read this restaurant's orders.
        let roma = app.restaurant_id("trattoria-roma").await;
        let listed = app.graphql_as(Some(&other_owner), "query($id: ID!) { node(id: $id) { ... on Restaurant { orders { totalCount } } } }", json!({ "id": roma })).await;
        assert_eq!(listed.error_code(), "FORBIDDEN");
        let own = app.graphql_as(Some(&app.bearer(seed::DEMO_OWNER).await), "query($id: ID!) { node(id: $id) { ... on Restaurant { orders(status: READY_FOR_PICKUP) { edges { node { id } } } } } }", json!({ "id": roma })).await;
        assert!(own.data()["node"]["orders"]["edges"].as_array().unwrap().iter().any(|e| e["node"]["id"] == json!(id)));

        // Nor can a stranger subscribe.
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": stranger } })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, json!({ "id": "s", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { orderUpdated(orderId: $id) { status } }", "variables": { "id": id } } })).await;
        assert_eq!(refusal_code(&receive(&mut socket).await), "NOT_FOUND");
    }
}

db_test! {
    async fn impossible_moves_and_bad_orders_are_user_errors_that_change_nothing(app) {
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let orders_before = entities::order::Entity::find().count(&app.db).await.unwrap();
        let chosen = available(&items, 1);
        let mut zero = order_input(&restaurant, &chosen, "bad-1");
        zero["lines"][0]["quantity"] = json!(0);
        assert_eq!(place(&app, &customer, zero).await["userErrors"][0]["code"], "INVALID");
        let foreign_item = app.graphql("{ restaurant(slug: \"sakura-sushi\") { menu { items { id } } } }", json!({})).await;
        let foreign = foreign_item.data()["restaurant"]["menu"]["items"][0]["id"].as_str().unwrap().to_owned();
        let wrong = place(&app, &customer, order_input(&restaurant, &[foreign], "bad-2")).await;
        assert_eq!(wrong["userErrors"][0]["code"], "ITEM_NOT_FOUND");
        if let Some((sold_out, _, _)) = items.iter().find(|(_, ok, _)| !ok) {
            let sold = place(&app, &customer, order_input(&restaurant, std::slice::from_ref(sold_out), "bad-3")).await;
            assert_eq!(sold["userErrors"][0]["code"], "ITEM_UNAVAILABLE");
        }
        let closed_id = entities::restaurant::Entity::find()
            .filter(entities::restaurant::Column::IsOpen.eq(false))
            .one(&app.db).await.unwrap().expect("the demo has a closed restaurant").id;
        let closed = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::Restaurant, closed_id);
        let closed_items = app.graphql("query($id: ID!) { restaurant(id: $id) { menu { items { id } } } }", json!({ "id": closed })).await;
        let closed_item = closed_items.data()["restaurant"]["menu"]["items"][0]["id"].as_str().unwrap().to_owned();
        let refused = place(&app, &customer, order_input(closed.as_str(), &[closed_item], "bad-4")).await;
        assert_eq!(refused["userErrors"][0]["code"], "RESTAURANT_CLOSED");
        assert_eq!(entities::order::Entity::find().count(&app.db).await.unwrap(), orders_before);

        let placed = place(&app, &customer, order_input(&restaurant, &chosen, "moves")).await;
        let id = placed["order"]["id"].as_str().unwrap().to_owned();
        let skip = act(&app, &owner, "markOrderReady", json!({ "orderId": id })).await;
        assert_eq!(skip["userErrors"][0]["code"], "INVALID_TRANSITION");
        let reject = act(&app, &owner, "rejectOrder", json!({ "orderId": id })).await;
        assert_eq!(reject["userErrors"][0]["field"], json!(["input", "reason"]));
        act(&app, &owner, "acceptOrder", json!({ "orderId": id })).await;
        let late = act(&app, &customer, "cancelOrder", json!({ "orderId": id })).await;
        assert_eq!(late["userErrors"][0]["code"], "INVALID_TRANSITION");
        let back = act(&app, &owner, "acceptOrder", json!({ "orderId": id })).await;
        assert_eq!(back["userErrors"][0]["code"], "INVALID_TRANSITION");
        let review = app.graphql_as(Some(&customer), "mutation($id: ID!) { createReview(input: { orderId: $id, rating: 4 }) { userErrors { code } } }", json!({ "id": id })).await;
        assert_eq!(review.data()["createReview"]["userErrors"][0]["code"], "NOT_DELIVERED");
        let history = app.graphql_as(Some(&customer), "query($id: ID!) { order(id: $id) { status events { toStatus } } }", json!({ "id": id })).await;
        assert_eq!(history.data()["order"]["events"].as_array().unwrap().len(), 2, "failed moves leave no event");
    }
}

db_test! {
    async fn order_scopes_limit_api_tokens_and_anonymous_callers_cannot_order(app) {
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let anonymous = app.graphql_as(None, PLACE, json!({ "input": order_input(&restaurant, &available(&items, 1), "anon") })).await;
        assert_eq!(anonymous.error_code(), "UNAUTHENTICATED");
        let token = app.graphql_as(Some(&customer), "mutation { createApiToken(input: { name: \"read\", scopes: [ORDERS_READ] }) { secret } }", json!({})).await;
        let read_only = format!("Bearer {}", token.data()["createApiToken"]["secret"].as_str().unwrap());
        let denied = app.graphql_as(Some(&read_only), PLACE, json!({ "input": order_input(&restaurant, &available(&items, 1), "scoped") })).await;
        assert_eq!(denied.error_code(), "FORBIDDEN");
        let listed = app.graphql_as(Some(&read_only), "{ viewer { orders(first: 5) { totalCount edges { node { id } } } } }", json!({})).await;
        assert!(listed.data()["viewer"]["orders"]["totalCount"].as_i64().unwrap() > 0, "the demo customer has a history");
        let token = app.graphql_as(Some(&customer), "mutation { createApiToken(input: { name: \"menu\", scopes: [MENU_WRITE] }) { secret } }", json!({})).await;
        let no_orders = format!("Bearer {}", token.data()["createApiToken"]["secret"].as_str().unwrap());
        let hidden = app.graphql_as(Some(&no_orders), "{ viewer { orders { totalCount } } }", json!({})).await;
        assert_eq!(hidden.error_code(), "FORBIDDEN");
    }
}

db_test! {
    /// Couriers page through the work on offer nearest first, with a count; any courier reads
    /// a ready order's pickup and drop-off before claiming, until another one claims it.
    async fn couriers_see_unclaimed_ready_orders_nearest_first(app) {
        let mut ids = Vec::new();
        for n in 0..5 {
            ids.push(ready_order(&app, &format!("available-{n}")).await);
        }
        let couriers = courier_emails(&app).await;
        let courier = app.bearer(seed::DEMO_COURIER).await;
        let other = app.bearer(&couriers[0]).await;
        let page = "query($after: String) { availableDeliveries(first: 2, after: $after, near: { latitude: 52.52, longitude: 13.405 }) {
            totalCount pageInfo { hasNextPage endCursor } edges { cursor pickupDistanceMeters node { id status delivery { status } } } } }";
        let everything = app.graphql_as(Some(&courier), "{ availableDeliveries(first: 100, near: { latitude: 52.52, longitude: 13.405 }) { totalCount edges { pickupDistanceMeters node { id } } } }", json!({})).await;
        let everything = everything.data()["availableDeliveries"].clone();
        let all: Vec<Value> = everything["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].clone()).collect();
        assert_eq!(everything["totalCount"], json!(all.len()));
        assert!(ids.iter().all(|id| all.contains(&json!(id))));
        let distances: Vec<i64> = everything["edges"].as_array().unwrap().iter().map(|e| e["pickupDistanceMeters"].as_i64().unwrap()).collect();
        assert!(distances.windows(2).all(|w| w[0] <= w[1] + 1), "nearest first: {distances:?}");
        // Two at a time, the same list.
        let (mut paged, mut after) = (Vec::new(), Value::Null);
        loop {
            let response = app.graphql_as(Some(&courier), page, json!({ "after": after })).await;
            let connection = response.data()["availableDeliveries"].clone();
            for edge in connection["edges"].as_array().unwrap() {
                assert_eq!(edge["node"]["status"], "READY_FOR_PICKUP");
                assert!(edge["node"]["delivery"].is_null());
                paged.push(edge["node"]["id"].clone());
            }
            if connection["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = connection["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(paged, all);
        // A cursor belongs to its ordering.
        let without_near = app.graphql_as(Some(&courier), "query($after: String) { availableDeliveries(first: 2, after: $after) { totalCount } }", json!({ "after": after })).await;
        assert_eq!(without_near.error_code(), "BAD_USER_INPUT");

        // Before claiming, every courier reads the pickup and the drop-off.
        let read = "query($id: ID!) { order(id: $id) { id deliveryAddress restaurant { name address } } }";
        for who in [&courier, &other] {
            let seen = app.graphql_as(Some(who), read, json!({ "id": ids[0] })).await;
            assert_eq!(seen.data()["order"]["id"], json!(ids[0]));
            assert!(seen.data()["order"]["restaurant"]["address"].is_string());
        }
        // Nobody else does.
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        assert_eq!(app.graphql_as(Some(&customer), page, json!({})).await.error_code(), "FORBIDDEN");
        let stranger = entities::user::Entity::find()
            .filter(entities::user::Column::Email.like("user%@example.test"))
            .one(&app.db).await.unwrap().unwrap().email.unwrap();
        let stranger = app.bearer(&stranger).await;
        let hidden = app.graphql_as(Some(&stranger), read, json!({ "id": ids[0] })).await;
        assert_eq!(hidden.data()["order"], Value::Null, "a customer who is not its customer");
        act(&app, &courier, "claimDelivery", json!({ "orderId": ids[0] })).await;
        let after_claim = app.graphql_as(Some(&courier), "{ availableDeliveries(first: 100) { totalCount edges { node { id } } } }", json!({})).await;
        let after_claim = after_claim.data()["availableDeliveries"].clone();
        assert!(after_claim["edges"].as_array().unwrap().iter().all(|e| e["node"]["id"] != json!(ids[0])));
        assert_eq!(after_claim["totalCount"], json!(all.len() - 1));
        // Claimed: the other courier cannot read it any more; the claimer still can.
        let gone = app.graphql_as(Some(&other), read, json!({ "id": ids[0] })).await;
        assert_eq!(gone.data()["order"], Value::Null);
        let mine = app.graphql_as(Some(&courier), read, json!({ "id": ids[0] })).await;
        assert_eq!(mine.data()["order"]["id"], json!(ids[0]));
    }
}

db_test! {
    async fn staff_follow_their_restaurants_new_orders_and_strangers_cannot(app) {
        let (restaurant, items) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let subscribe = |id: &str| json!({ "id": id, "type": "subscribe", "payload": {
            "query": "subscription($r: ID!) { restaurantOrders(restaurantId: $r) { status customer { displayName } } }",
            "variables": { "r": restaurant } } });
        let mut staff = connect(&app, "graphql-transport-ws").await;
        send(&mut staff, json!({ "type": "connection_init", "payload": { "Authorization": owner } })).await;
        assert_eq!(receive(&mut staff).await["type"], "connection_ack");
        send(&mut staff, subscribe("r")).await;

        let mut stranger = connect(&app, "graphql-transport-ws").await;
        let courier = app.bearer(seed::DEMO_COURIER).await;
        send(&mut stranger, json!({ "type": "connection_init", "payload": { "Authorization": courier } })).await;
        assert_eq!(receive(&mut stranger).await["type"], "connection_ack");
        send(&mut stranger, subscribe("x")).await;
        assert_eq!(refusal_code(&receive(&mut stranger).await), "FORBIDDEN");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;

        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        place(&app, &customer, order_input(&restaurant, &available(&items, 1), "live-new")).await;
        let next = receive(&mut staff).await;
        assert_eq!(next["payload"]["data"]["restaurantOrders"], json!({ "status": "PLACED", "customer": { "displayName": "Casey Customer" } }));
    }
}

/// Reads the socket until `complete` for `id`, and returns the `next` payloads before it.
async fn until_complete(socket: &mut crate::websocket::Socket, id: &str) -> Vec<Value> {
    let mut payloads = Vec::new();
    loop {
        let message = receive(socket).await;
        match (message["type"].as_str(), message["id"].as_str()) {
            (Some("complete"), Some(done)) if done == id => return payloads,
            (Some("next"), Some(seen)) if seen == id => payloads.push(message["payload"].clone()),
            _ => panic!("unexpected {message}"),
        }
    }
}

db_test! {
    async fn a_courier_whose_order_is_cancelled_is_told_and_the_stream_completes(app) {
        let id = ready_order(&app, "cancelled-under-courier").await;
        let (courier, owner) = (app.bearer(seed::DEMO_COURIER).await, app.bearer(seed::DEMO_OWNER).await);
        let claimed = act(&app, &courier, "claimDelivery", json!({ "orderId": id })).await;
        assert_eq!(claimed["userErrors"], json!([]));
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": courier } })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, json!({ "id": "o", "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { orderUpdated(orderId: $id, current: true) { status version } }",
            "variables": { "id": id } } })).await;
        // Asked for, the current state comes first.
        let first = receive(&mut socket).await;
        assert_eq!(first["payload"]["data"]["orderUpdated"], json!({ "status": "READY_FOR_PICKUP", "version": 5 }));

        let cancelled = act(&app, &owner, "cancelOrder", json!({ "orderId": id, "reason": "out of dough" })).await;
        assert_eq!(cancelled["userErrors"], json!([]));
        // Told what happened, then the stream completes: a cancelled order changes no more.
        let after = until_complete(&mut socket, "o").await;
        assert_eq!(after.len(), 1, "one last message, then the end: {after:?}");
        assert_eq!(after[0]["data"]["orderUpdated"], json!({ "status": "CANCELLED", "version": 6 }), "{after:?}");
        // The courier keeps the cancelled delivery in their history.
        let seen = app.graphql_as(Some(&courier), "query($id: ID!) { order(id: $id) { status delivery { status } lastEvent { actor { displayName } reason } } }", json!({ "id": id })).await;
        assert_eq!(seen.data()["order"], json!({ "status": "CANCELLED", "delivery": { "status": "CANCELLED" },
            "lastEvent": { "actor": { "displayName": "Olivia Owner" }, "reason": "out of dough" } }));
    }
}

db_test! {
    async fn staff_removed_from_a_restaurant_stop_hearing_its_orders(app) {
        let (restaurant, items) = roma_items(&app).await;
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        // A customer (no restaurant of their own) on Roma's staff for a while.
        let worker = entities::user::Entity::find()
            .filter(entities::user::Column::Email.like("user%@example.test"))
            .order_by_desc(entities::user::Column::Id)
            .one(&app.db).await.unwrap().unwrap();
        let worker_id = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, worker.id);
        let added = app
            .graphql_as(Some(&admin), "mutation($i: StaffInput!) { addRestaurantStaff(input: $i) { userErrors { code } } }",
                json!({ "i": { "restaurantId": restaurant, "userId": worker_id } }))
            .await;
        assert_eq!(added.data()["addRestaurantStaff"]["userErrors"], json!([]));
        let staff = format!("Bearer {}", app.tokens.issue(worker.id, None, None, chrono::Utc::now()));
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": staff } })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        send(&mut socket, json!({ "id": "r", "type": "subscribe", "payload": {
            "query": "subscription($r: ID!) { restaurantOrders(restaurantId: $r) { id } }",
            "variables": { "r": restaurant } } })).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let removed = app
            .graphql_as(Some(&admin), "mutation($i: StaffInput!) { removeRestaurantStaff(input: $i) { userErrors { code } } }",
                json!({ "i": { "restaurantId": restaurant, "userId": worker_id } }))
            .await;
        assert_eq!(removed.data()["removeRestaurantStaff"]["userErrors"], json!([]));
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        place(&app, &customer, order_input(&restaurant, &available(&items, 1), "after-removal")).await;
        let after = until_complete(&mut socket, "r").await;
        assert_eq!(after.len(), 1, "{after:?}");
        assert_eq!(after[0]["errors"][0]["extensions"]["code"], "FORBIDDEN", "{after:?}");
        assert!(after[0]["data"].is_null(), "the new order is not sent: {after:?}");
        // New operations on the same socket run as the worker is now: no longer staff.
        let orders = crate::websocket::operation(&mut socket, "q",
            "query($r: ID!) { restaurant(id: $r) { orders(first: 5) { totalCount nodes { deliveryAddress } } } }",
            json!({ "r": restaurant })).await;
        assert_eq!(orders["errors"][0]["extensions"]["code"], "FORBIDDEN", "{orders}");
        assert!(orders["data"]["restaurant"]["orders"].is_null(), "{orders}");
        send(&mut socket, json!({ "id": "again", "type": "subscribe", "payload": {
            "query": "subscription($r: ID!) { restaurantOrders(restaurantId: $r) { id } }",
            "variables": { "r": restaurant } } })).await;
        let refused = receive(&mut socket).await;
        assert_eq!(refused["id"], "again");
        assert!(refused.to_string().contains("FORBIDDEN"), "{refused}");
    }
}

db_test! {
    async fn racing_retries_of_one_order_announce_it_once(app) {
        let (restaurant, items) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let mut staff = connect(&app, "graphql-transport-ws").await;
        send(&mut staff, json!({ "type": "connection_init", "payload": { "Authorization": owner } })).await;
        assert_eq!(receive(&mut staff).await["type"], "connection_ack");
        send(&mut staff, json!({ "id": "r", "type": "subscribe", "payload": {
            "query": "subscription($r: ID!) { restaurantOrders(restaurantId: $r) { id } }",
            "variables": { "r": restaurant } } })).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;

        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let input = order_input(&restaurant, &available(&items, 1), "retried");
        let retry = |input: Value| {
            let (app, customer) = (&app, &customer);
            async move {
                app.graphql_as(Some(customer), "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } replayed } }",
                    json!({ "input": input })).await.data()["placeOrder"].clone()
            }
        };
        let placed = join_all((0..4).map(|_| retry(input.clone()))).await;
        let id = placed[0]["order"]["id"].as_str().unwrap().to_owned();
        assert!(placed.iter().all(|p| p["order"]["id"] == id), "one order: {placed:?}");
        let created = placed.iter().filter(|p| p["replayed"] == false).count();
        assert_eq!(created, 1, "exactly one answer placed it, the others say they are replays: {placed:?}");
        // A second order marks the end of what the retries may have announced.
        let sentinel = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "after")).await;
        let sentinel = sentinel["order"]["id"].as_str().unwrap().to_owned();
        let mut announced = Vec::new();
        loop {
            let next = receive(&mut staff).await;
            let seen = next["payload"]["data"]["restaurantOrders"]["id"].as_str().unwrap().to_owned();
            if seen == sentinel {
                break;
            }
            announced.push(seen);
        }
        assert_eq!(announced, vec![id], "the new order is announced once, not once per retry");
    }
}

db_test! {
    async fn couriers_learn_nothing_of_orders_they_cannot_claim_and_write_only_tokens_see_no_order(app) {
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "not-ready")).await;
        let id = placed["order"]["id"].as_str().unwrap().to_owned();
        let courier = app.bearer(seed::DEMO_COURIER).await;
        let probe = act(&app, &courier, "claimDelivery", json!({ "orderId": id })).await;
        assert_eq!(probe["userErrors"][0]["code"], "NOT_FOUND", "a placed order is not up for grabs");

        let token = app.graphql_as(Some(&customer), "mutation { createApiToken(input: { name: \"w\", scopes: [ORDERS_WRITE] }) { secret } }", json!({})).await;
        let write_only = format!("Bearer {}", token.data()["createApiToken"]["secret"].as_str().unwrap());
        let placed = place(&app, &write_only, order_input(&restaurant, &available(&items, 1), "write-only")).await;
        assert_eq!(placed["userErrors"], json!([]));
        assert_eq!(placed["order"], Value::Null, "acting does not mean reading");
        let stored = entities::order::Entity::find()
            .filter(entities::order::Column::IdempotencyKey.eq("write-only"))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(stored, 1);
    }
}

db_test! {
    /// A subscriber that reads slowly neither slows the courier publishing positions nor the
    /// other subscribers.
    async fn a_slow_subscriber_blocks_neither_publishers_nor_other_subscribers(app) {
        let id = ready_order(&app, "slow").await;
        let courier = app.bearer(seed::DEMO_COURIER).await;
        act(&app, &courier, "claimDelivery", json!({ "orderId": id })).await;
        act(&app, &courier, "confirmPickup", json!({ "orderId": id })).await;
        let follow = |sid: &str| json!({ "id": sid, "type": "subscribe", "payload": {
            "query": "subscription($id: ID!) { courierLocation(orderId: $id) { lastLocation { latitude } } }",
            "variables": { "id": id } } });
        let mut slow = connect(&app, "graphql-transport-ws").await;
        send(&mut slow, json!({ "type": "connection_init", "payload": { "Authorization": app.bearer(seed::DEMO_CUSTOMER).await } })).await;
        assert_eq!(receive(&mut slow).await["type"], "connection_ack");
        send(&mut slow, follow("slow")).await;
        let mut fast = connect(&app, "graphql-transport-ws").await;
        send(&mut fast, json!({ "type": "connection_init", "payload": { "Authorization": app.bearer(seed::DEMO_OWNER).await } })).await;
        assert_eq!(receive(&mut fast).await["type"], "connection_ack");
        send(&mut fast, follow("fast")).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;

        // More positions than a subscriber's buffer holds (1024).
        let updates: u32 = 1100;
        let last = 52.0 + f64::from(updates) / 10_000.0;
        let reader = tokio::spawn(async move {
            loop {
                let message = receive(&mut fast).await;
                if message["payload"]["data"]["courierLocation"]["lastLocation"]["latitude"] == json!(last) {
                    return;
                }
            }
        });
        // The slow subscriber reads one message every few seconds while the courier publishes,
        // then reads on. The server holds only so much for it: it either catches up to the last
        // position or, having fallen too far behind to answer pings, is disconnected. Either way
        // nobody waits for it.
        let publishing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let still_publishing = publishing.clone();
        let laggard = tokio::spawn(async move {
            use futures_util::StreamExt;
            loop {
                if still_publishing.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                }
                let Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) = slow.next().await else {
                    return "disconnected";
                };
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["payload"]["data"]["courierLocation"]["lastLocation"]["latitude"] == json!(last) {
                    return "caught up";
                }
            }
        });
        for step in 1..=updates {
            let latitude = 52.0 + f64::from(step) / 10_000.0;
            let moved = app.graphql_as(Some(&courier),
                "mutation($id: ID!, $lat: Float!) { updateCourierLocation(input: { orderId: $id, location: { latitude: $lat, longitude: 13.4 } }) { userErrors { code } } }",
                json!({ "id": id, "lat": latitude })).await;
            assert_eq!(moved.data()["updateCourierLocation"]["userErrors"], json!([]));
        }
        publishing.store(false, std::sync::atomic::Ordering::Relaxed);
        tokio::time::timeout(std::time::Duration::from_secs(20), reader)
            .await
            .expect("the reading subscriber gets the last position")
            .unwrap();
        let outcome = tokio::time::timeout(std::time::Duration::from_mins(1), laggard)
            .await
            .expect("the slow subscriber neither hangs nor is kept waiting on")
            .unwrap();
        assert!(["caught up", "disconnected"].contains(&outcome));
    }
}

/// Two replicas over one PostgreSQL database: a subscriber on one sees changes made through
/// the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_instance_sees_changes_made_through_another() {
    let Some(app) = TestApp::spawn(crate::helpers::Backend::Postgres, 1).await else {
        return;
    };
    let (other_address, other) = app.another_instance().await;
    tokio::spawn(other.run_until_stopped());
    let (restaurant, items) = roma_items(&app).await;
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    let owner = app.bearer(seed::DEMO_OWNER).await;
    let placed = place(
        &app,
        &customer,
        order_input(&restaurant, &available(&items, 1), "replicas"),
    )
    .await;
    let id = placed["order"]["id"].as_str().unwrap().to_owned();

    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": customer } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    send(&mut socket, json!({ "id": "o", "type": "subscribe", "payload": {
        "query": "subscription($id: ID!) { orderUpdated(orderId: $id) { status } }", "variables": { "id": id } } })).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // The owner accepts through the other instance.
    let response = app
        .client
        .post(format!("{other_address}/graphql"))
        .header("authorization", &owner)
        .json(&json!({ "query": "mutation($id: ID!) { acceptOrder(input: { orderId: $id }) { order { status } } }", "variables": { "id": id } }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["acceptOrder"]["order"]["status"], "ACCEPTED");
    let next = receive(&mut socket).await;
    assert_eq!(
        next["payload"]["data"]["orderUpdated"]["status"], "ACCEPTED",
        "{next}"
    );
}

/// One page of the demo customer's orders.
async fn order_page(app: &TestApp, who: &str, variables: Value) -> Value {
    let response = app
        .graphql_as(
            Some(who),
            "query($first: Int, $after: String, $last: Int, $before: String) { viewer { orders(first: $first, after: $after, last: $last, before: $before) {
                totalCount
                edges { cursor node { id createdAt } }
                pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }",
            variables,
        )
        .await;
    response.data()["viewer"]["orders"].clone()
}

fn order_ids(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| edge["node"]["id"].as_str().expect("an id").to_owned())
        .collect()
}

db_test! {
    /// A customer's orders page newest first, forwards and backwards, with edge cursors that
    /// equal `pageInfo`'s and resume right after their edge.
    async fn a_customers_orders_page_forwards_and_backwards(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let (mut forward, mut after) = (Vec::new(), Value::Null);
        let mut created = Vec::new();
        let total = loop {
            let page = order_page(&app, &customer, json!({ "first": 3, "after": after })).await;
            let edges = page["edges"].as_array().expect("edges").clone();
            assert_eq!(edges.first().expect("an edge")["cursor"], page["pageInfo"]["startCursor"]);
            assert_eq!(edges.last().unwrap()["cursor"], page["pageInfo"]["endCursor"]);
            created.extend(edges.iter().map(|edge| edge["node"]["createdAt"].as_str().unwrap().to_owned()));
            forward.extend(order_ids(&page));
            if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                break page["totalCount"].as_u64().unwrap();
            }
            after = page["pageInfo"]["endCursor"].clone();
        };
        assert!(total > 3, "the demo customer has a history of several pages");
        assert_eq!(forward.len() as u64, total);
        let distinct: std::collections::HashSet<_> = forward.iter().collect();
        assert_eq!(distinct.len(), forward.len(), "no order twice");
        let parsed: Vec<chrono::DateTime<chrono::Utc>> = created.iter().map(|at| at.parse().expect("a timestamp")).collect();
        assert!(parsed.windows(2).all(|pair| pair[0] >= pair[1]), "newest first");

        // A middle edge's cursor resumes right after it.
        let first = order_page(&app, &customer, json!({ "first": 3 })).await;
        let resumed = order_page(&app, &customer, json!({ "first": 2, "after": first["edges"][1]["cursor"] })).await;
        assert_eq!(order_ids(&resumed), forward[2..4]);

        // Backwards from the end gives the same orders.
        let (mut backward, mut before) = (Vec::new(), Value::Null);
        loop {
            let page = order_page(&app, &customer, json!({ "last": 3, "before": before })).await;
            let mut ids = order_ids(&page);
            ids.extend(backward);
            backward = ids;
            if !page["pageInfo"]["hasPreviousPage"].as_bool().unwrap() {
                break;
            }
            before = page["pageInfo"]["startCursor"].clone();
        }
        assert_eq!(backward, forward);
    }
}

db_test! {
    /// Order pages of many restaurants and many customers in one request (one statement for
    /// all the pages of one shape, one for all the counts): each owner gets its own newest
    /// orders, forwards and backwards from a cursor, with a status filter, and the count the
    /// orders table has, in as many statements for 2 restaurants as for 20.
    scale = 3,
    async fn order_pages_under_a_list_are_each_owners_own(app) {
        use entities::{OrderStatus, order};
        use sea_orm::QueryOrder;
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let (decode, ids) = (decode_id, node_ids);
        let stored = |column: order::Column, owner: i64, status: Option<OrderStatus>| {
            let mut select = order::Entity::find().filter(column.eq(owner));
            if let Some(status) = status {
                select = select.filter(order::Column::Status.eq(status));
            }
            let db = app.db.clone();
            async move {
                select
                    .order_by_desc(order::Column::Id)
                    .all(&db)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|order| order.id)
                    .collect::<Vec<i64>>()
            }
        };
        let query = "query($n: Int!, $before: String, $after: String) { restaurants(first: $n) { edges { node { id
            orders(first: 3) { totalCount edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage } }
            delivered: orders(first: 2, status: DELIVERED) { totalCount edges { node { id status } } }
            back: orders(last: 2, before: $before) { edges { node { id } } pageInfo { hasPreviousPage hasNextPage } }
            on: orders(first: 2, after: $after) { edges { node { id } } }
        } } } }";
        let first = app.graphql_as(Some(&admin), query, json!({ "n": 20 })).await;
        let small = app.graphql_as(Some(&admin), query, json!({ "n": 2 })).await;
        small.data();
        assert_eq!(
            first.sql_statements(),
            small.sql_statements(),
            "statements for 20 restaurants and for 2"
        );
        let mut checked = 0;
        for edge in first.data()["restaurants"]["edges"].as_array().unwrap().clone() {
            let restaurant = &edge["node"];
            let id = decode(&restaurant["id"]);
            let all = stored(order::Column::RestaurantId, id, None).await;
            let delivered = stored(order::Column::RestaurantId, id, Some(OrderStatus::Delivered)).await;
            let orders = &restaurant["orders"];
            assert_eq!(ids(orders), all.iter().take(3).copied().collect::<Vec<_>>());
            assert_eq!(orders["totalCount"], all.len());
            assert_eq!(orders["pageInfo"]["hasNextPage"], all.len() > 3);
            assert_eq!(orders["pageInfo"]["hasPreviousPage"], false);
            assert_eq!(ids(&restaurant["delivered"]), delivered.iter().take(2).copied().collect::<Vec<_>>());
            assert_eq!(restaurant["delivered"]["totalCount"], delivered.len());
            for order in restaurant["delivered"]["edges"].as_array().unwrap() {
                assert_eq!(order["node"]["status"], "DELIVERED");
            }
            if all.len() < 3 {
                continue;
            }
            checked += 1;
            // Backwards from the third: the two before it; forwards after the first: the second
            // and third. Under the list again, so every restaurant's page shares the statement.
            let edges = orders["edges"].as_array().unwrap();
            let around = app
                .graphql_as(
                    Some(&admin),
                    query,
                    json!({ "n": 20, "before": edges[2]["cursor"], "after": edges[0]["cursor"] }),
                )
                .await;
            let mine = node_with_id(&around.data()["restaurants"], &restaurant["id"]);
            assert_eq!(ids(&mine["back"]), all[..2]);
            assert_eq!(mine["back"]["pageInfo"]["hasPreviousPage"], false);
            assert_eq!(mine["back"]["pageInfo"]["hasNextPage"], true);
            assert_eq!(ids(&mine["on"]), all[1..3]);
        }
        assert!(checked >= 2, "enough restaurants with three orders or more: {checked}");

        // Customers' orders under a list: the authors of a restaurant's reviews.
        let authors = app
            .graphql_as(
                Some(&admin),
                "{ restaurants(first: 20) { edges { node { reviews(first: 5) { edges { node { author { id orders(first: 2) { totalCount edges { node { id } } } } } } } } } } }",
                json!({}),
            )
            .await;
        let mut customers = 0;
        for restaurant in authors.data()["restaurants"]["edges"].as_array().unwrap() {
            for review in restaurant["node"]["reviews"]["edges"].as_array().unwrap() {
                let author = &review["node"]["author"];
                let all = stored(order::Column::CustomerId, decode(&author["id"]), None).await;
                assert_eq!(ids(&author["orders"]), all.iter().take(2).copied().collect::<Vec<_>>());
                assert_eq!(author["orders"]["totalCount"], all.len());
                customers += 1;
            }
        }
        assert!(customers > 0, "the demo data has reviews");
    }
}

db_test! {
    /// Orders are private under a list too: a customer asking for restaurants' orders gets
    /// `FORBIDDEN` for each and no order, and another customer's orders stay hidden.
    async fn order_pages_under_a_list_stay_private(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let response = app
            .graphql_as(
                Some(&customer),
                "{ restaurants(first: 5) { edges { node { name orders(first: 5) { totalCount edges { node { id } } } } } } }",
                json!({}),
            )
            .await;
        // `orders` is non-null, so each refusal nulls its way up (GraphQL §6.4.4): no order
        // of any restaurant is in the answer, only FORBIDDEN errors.
        assert!(!response.body["data"].to_string().contains("totalCount"), "{}", response.body);
        let errors = response.body["errors"].as_array().expect("errors");
        assert!(!errors.is_empty());
        assert!(errors.iter().all(|e| e["extensions"]["code"] == "FORBIDDEN"), "{errors:?}");
        let others = app
            .graphql_as(
                Some(&customer),
                "{ restaurants(first: 5) { edges { node { reviews(first: 5) { edges { node { author { email orders(first: 1) { totalCount } } } } } } } } }",
                json!({}),
            )
            .await;
        let errors = others.body["errors"].as_array().expect("other customers' orders are refused");
        assert!(errors.iter().all(|e| e["extensions"]["code"] == "FORBIDDEN"), "{errors:?}");
        // `author` and `orders` are non-null, so the refusal nulls the whole answer (§6.4.4):
        // no other customer's order count gets out.
        assert!(!others.body["data"].to_string().contains("totalCount"), "{}", others.body);
        assert!(
            errors.iter().any(|e| e["path"].as_array().and_then(|p| p.last()) == Some(&json!("orders"))),
            "{errors:?}"
        );
    }
}

db_test! {
    /// `Delivery` is a `Node`: its ID reaches it through `node(id)`, and it links back to its
    /// order, for exactly those who may see the order (its customer, the restaurant's staff,
    /// its courier, admins); anyone else, another courier included, gets null.
    async fn a_delivery_is_a_node_for_those_who_may_see_its_order(app) {
        let id = ready_order(&app, "delivery-node").await;
        let courier = app.bearer(seed::DEMO_COURIER).await;
        let claimed = act(&app, &courier, "claimDelivery", json!({ "orderId": id })).await;
        assert_eq!(claimed["userErrors"], json!([]));
        let delivery = app
            .graphql_as(
                Some(&courier),
                "query($id: ID!) { order(id: $id) { delivery { id status order { id } } } }",
                json!({ "id": id }),
            )
            .await;
        let delivery = delivery.data()["order"]["delivery"].clone();
        assert_eq!(delivery["order"]["id"], json!(id));
        assert_eq!(delivery["status"], "CLAIMED");
        let delivery_id = delivery["id"].clone();
        let node = "query($id: ID!) { node(id: $id) { id ... on Delivery { status courier { displayName } order { id status } } } }";
        for who in [seed::DEMO_COURIER, seed::DEMO_CUSTOMER, seed::DEMO_OWNER, seed::DEMO_ADMIN] {
            let bearer = app.bearer(who).await;
            let seen = app.graphql_as(Some(&bearer), node, json!({ "id": delivery_id })).await;
            assert_eq!(seen.data()["node"]["id"], delivery_id, "{who}");
            assert_eq!(seen.data()["node"]["order"]["id"], json!(id), "{who}");
            assert_eq!(seen.data()["node"]["order"]["status"], "READY_FOR_PICKUP", "{who}");
        }
        // Another courier, another customer and nobody: null, and nothing of the order.
        let emails = courier_emails(&app).await;
        let other_courier = app.bearer(&emails[0]).await;
        let someone = entities::user::Entity::find()
            .filter(entities::user::Column::Email.like("user%@example.test"))
            .one(&app.db)
            .await
            .unwrap()
            .and_then(|user| user.email)
            .expect("a customer of the demo data");
        let stranger = app.bearer(&someone).await;
        for bearer in [Some(&other_courier), Some(&stranger), None] {
            let hidden = app.graphql_as(bearer.map(String::as_str), node, json!({ "id": delivery_id })).await;
            assert!(hidden.body["data"]["node"].is_null(), "{}", hidden.body);
            assert!(!hidden.body.to_string().contains(id.as_str()), "{}", hidden.body);
        }
        // `nodes` loads deliveries with the others, in order.
        let both = app
            .graphql_as(
                Some(&courier),
                "query($ids: [ID!]!) { nodes(ids: $ids) { id __typename } }",
                json!({ "ids": [delivery_id, id] }),
            )
            .await;
        assert_eq!(both.data()["nodes"][0]["__typename"], "Delivery");
        assert_eq!(both.data()["nodes"][1]["__typename"], "Order");
    }
}

db_test! {
    /// `viewer.deliveries`: a courier app that restarts finds its current delivery first, then
    /// its history (delivered, and cancelled after the claim), as a connection that pages the
    /// same forwards and backwards as the deliveries table says. Private to the courier (and
    /// admins).
    async fn a_courier_lists_its_deliveries_active_first(app) {
        use entities::{DeliveryStatus, delivery};
        let courier = app.bearer(seed::DEMO_COURIER).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let (delivered, active, cancelled) = (
            ready_order(&app, "deliveries-1").await,
            ready_order(&app, "deliveries-2").await,
            ready_order(&app, "deliveries-3").await,
        );
        for id in [&delivered, &active, &cancelled] {
            let claimed = act(&app, &courier, "claimDelivery", json!({ "orderId": id })).await;
            assert_eq!(claimed["userErrors"], json!([]));
        }
        for mutation in ["confirmPickup", "confirmDelivery"] {
            let moved = act(&app, &courier, mutation, json!({ "orderId": delivered })).await;
            assert_eq!(moved["userErrors"], json!([]), "{mutation}");
        }
        // The restaurant cancels it after the claim (customers may only until it is accepted).
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let cancel = act(&app, &owner, "cancelOrder", json!({ "orderId": cancelled })).await;
        assert_eq!(cancel["userErrors"], json!([]));

        // The table's order: active first, then the rest, each newest first.
        let courier_id = app.user_id(seed::DEMO_COURIER).await;
        let mut stored = delivery::Entity::find()
            .filter(delivery::Column::CourierId.eq(courier_id))
            .all(&app.db)
            .await
            .unwrap();
        stored.sort_by_key(|d| {
            let over = !matches!(d.status, DeliveryStatus::Claimed | DeliveryStatus::PickedUp);
            (over, std::cmp::Reverse(d.id))
        });
        let stored: Vec<i64> = stored.iter().map(|d| d.id).collect();
        assert!(stored.len() >= 3);

        let page = "query($first: Int, $after: String, $last: Int, $before: String) { viewer { deliveries(first: $first, after: $after, last: $last, before: $before) {
            edges { cursor node { id status order { id } } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } }";
        let first = app.graphql_as(Some(&courier), page, json!({ "first": 1 })).await;
        let top = &first.data()["viewer"]["deliveries"]["edges"][0]["node"];
        assert_eq!(top["status"], "CLAIMED");
        assert_eq!(top["order"]["id"], json!(active));
        // Forwards two at a time, then backwards two at a time: the whole list both ways.
        let (mut forwards, mut after) = (Vec::new(), Value::Null);
        loop {
            let response = app.graphql_as(Some(&courier), page, json!({ "first": 2, "after": after })).await;
            let connection = response.data()["viewer"]["deliveries"].clone();
            forwards.extend(node_ids(&connection));
            if connection["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = connection["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(forwards, stored);
        let (mut backwards, mut before) = (Vec::new(), Value::Null);
        loop {
            let response = app.graphql_as(Some(&courier), page, json!({ "last": 2, "before": before })).await;
            let connection = response.data()["viewer"]["deliveries"].clone();
            let mut ids = node_ids(&connection);
            ids.extend(backwards);
            backwards = ids;
            if connection["pageInfo"]["hasPreviousPage"] != true {
                break;
            }
            before = connection["pageInfo"]["startCursor"].clone();
        }
        assert_eq!(backwards, stored);
        let statuses: Vec<Value> = app
            .graphql_as(Some(&courier), page, json!({ "first": 100 }))
            .await
            .data()["viewer"]["deliveries"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|edge| edge["node"]["status"].clone())
            .collect();
        assert!(statuses.contains(&json!("CANCELLED")) && statuses.contains(&json!("DELIVERED")));

        // Someone else's deliveries: FORBIDDEN, and nothing of them.
        let courier_global = app.graphql_as(Some(&courier), "{ viewer { id } }", json!({})).await.data()["viewer"]["id"].clone();
        let theirs = "query($id: ID!) { node(id: $id) { ... on User { deliveries(first: 5) { edges { node { id } } } } } }";
        let other = app.bearer(&courier_emails(&app).await[0]).await;
        for bearer in [Some(&other), Some(&customer)] {
            let refused = app.graphql_as(bearer.map(String::as_str), theirs, json!({ "id": courier_global })).await;
            assert_eq!(refused.error_code(), "FORBIDDEN", "{}", refused.body);
            assert!(!refused.body.to_string().contains("edges"), "{}", refused.body);
        }
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let admins = app.graphql_as(Some(&admin), theirs, json!({ "id": courier_global })).await;
        assert_eq!(node_ids(&admins.data()["node"]["deliveries"]), stored[..stored.len().min(5)]);
        // A cursor of another list is a user error, not a page.
        let foreign = app
            .graphql_as(Some(&courier), page, json!({ "first": 2, "after": "eyJ0IjoxfQ" }))
            .await;
        assert_eq!(foreign.error_code(), "BAD_USER_INPUT", "{}", foreign.body);
    }
}
