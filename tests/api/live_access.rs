//! Running subscriptions follow their viewer's access as it is now: an API token revoked ends
//! them (`UNAUTHENTICATED`) before anything more is sent, a role taken away counts from the
//! next change; on one process, across replicas, and when the revocation rang no doorbell.

use std::collections::HashMap;

use chrono::Utc;
use dishpatch::{
    graphql::relay::{GlobalId, NodeKind},
    seed,
};
use entities::api_token;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, db_test},
    orders::{act, available, order_input, place, ready_order, roma_items},
    websocket::{Socket, connect_to, receive, send},
};

const KITCHEN: &str = "subscription($r: ID!) { restaurantOrders(restaurantId: $r) { id status } }";
const ORDER: &str = "subscription($id: ID!) { orderUpdated(orderId: $id) { status } }";
const POSITIONS: &str =
    "subscription($id: ID!) { courierLocation(orderId: $id) { lastLocation { latitude } } }";

/// A socket signed in with `authorization`, running `subscriptions` (id, query, variables).
async fn subscribed(
    app_address: &str,
    authorization: &str,
    subscriptions: &[(&str, &str, Value)],
) -> Socket {
    let mut socket = connect_to(app_address, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": authorization } }),
    )
    .await;
    assert_eq!(receive(&mut socket).await["type"], "connection_ack");
    for (id, query, variables) in subscriptions {
        send(&mut socket, json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
    }
    // Each subscription is running once the server has read its start.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    socket
}

/// Every payload each of `ids` sends until all of them completed.
async fn until_all_complete(socket: &mut Socket, ids: &[&str]) -> HashMap<String, Vec<Value>> {
    let mut payloads: HashMap<String, Vec<Value>> = ids
        .iter()
        .map(|id| ((*id).to_owned(), Vec::new()))
        .collect();
    let mut open: Vec<&str> = ids.to_vec();
    while !open.is_empty() {
        let message = receive(socket).await;
        let id = message["id"].as_str().unwrap_or_default().to_owned();
        match message["type"].as_str() {
            Some("complete") if open.contains(&id.as_str()) => open.retain(|open| *open != id),
            Some("next") if payloads.contains_key(&id) => payloads
                .get_mut(&id)
                .unwrap()
                .push(message["payload"].clone()),
            _ => panic!("unexpected {message}"),
        }
    }
    payloads
}

/// One message, the error that ended the running stream, with `code` and no data. (A stream
/// refused at its start would say so with another message.)
fn ended_with(payloads: &[Value], code: &str) {
    assert_eq!(payloads.len(), 1, "nothing but the end: {payloads:?}");
    let error = &payloads[0]["errors"][0];
    assert_eq!(error["extensions"]["code"], code, "{payloads:?}");
    let message = error["message"].as_str().unwrap_or_default();
    let why = if code == "UNAUTHENTICATED" {
        "was revoked"
    } else {
        "access to it is gone"
    };
    assert!(
        message.starts_with("the subscription ended") && message.contains(why),
        "{payloads:?}"
    );
    assert!(
        payloads[0]["data"].is_null(),
        "the change is not sent: {payloads:?}"
    );
}

/// Revokes API token `id` by a bare write, ringing no doorbell: as a replica whose
/// notification was lost would have.
async fn revoke_quietly(app: &TestApp, id: &str) {
    let id = GlobalId::decode_as(&async_graphql::ID(id.to_owned()), NodeKind::ApiToken).unwrap();
    api_token::ActiveModel {
        id: Set(id),
        revoked_at: Set(Some(Utc::now())),
        ..Default::default()
    }
    .update(&app.db)
    .await
    .unwrap();
}

async fn api_token(app: &TestApp, authorization: &str) -> (String, String) {
    let created = app
        .graphql_as(Some(authorization), "mutation { createApiToken(input: { name: \"kitchen display\", scopes: [ORDERS_READ] }) { secret apiToken { id } } }", json!({}))
        .await;
    let payload = &created.data()["createApiToken"];
    (
        format!("Bearer {}", payload["secret"].as_str().unwrap()),
        payload["apiToken"]["id"].as_str().unwrap().to_owned(),
    )
}

db_test! {
    /// The owner's kitchen display follows the restaurant and an order with an API token. The
    /// token is revoked (by the mutation, or by a write that rang no doorbell, as a replica cut
    /// off from the others would), then the order moves: both streams end with
    /// `UNAUTHENTICATED` instead of the change, which the owner's own session still gets.
    async fn subscriptions_end_when_their_api_token_is_revoked(app) {
        let (restaurant, items) = roma_items(&app).await;
        let (owner, customer) = (app.bearer(seed::DEMO_OWNER).await, app.bearer(seed::DEMO_CUSTOMER).await);
        // The placement is heard before the displays subscribe, so the next change they could
        // hear is the acceptance.
        let mut probe = subscribed(&app.address, &owner, &[("r", KITCHEN, json!({ "r": restaurant }))]).await;
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "revoked-display")).await;
        let order = placed["order"]["id"].as_str().unwrap().to_owned();
        let heard = receive(&mut probe).await;
        assert_eq!(heard["payload"]["data"]["restaurantOrders"]["id"], order.as_str(), "{heard}");
        let follows = [("r", KITCHEN, json!({ "r": restaurant })), ("o", ORDER, json!({ "id": order }))];
        let (revoked_by_mutation, by_mutation_id) = api_token(&app, &owner).await;
        let (revoked_quietly, quiet_id) = api_token(&app, &owner).await;
        let mut by_mutation = subscribed(&app.address, &revoked_by_mutation, &follows).await;
        let mut quietly = subscribed(&app.address, &revoked_quietly, &follows).await;
        let mut session = subscribed(&app.address, &owner, &follows).await;

        let revoked = app.graphql_as(Some(&owner), "mutation($id: ID!) { revokeApiToken(input: { id: $id }) { apiToken { revokedAt } } }",
            json!({ "id": by_mutation_id })).await;
        assert!(revoked.data()["revokeApiToken"]["apiToken"]["revokedAt"].is_string(), "{}", revoked.body);
        revoke_quietly(&app, &quiet_id).await;
        let accepted = act(&app, &owner, "acceptOrder", json!({ "orderId": order })).await;
        assert_eq!(accepted["userErrors"], json!([]));

        for socket in [&mut by_mutation, &mut quietly] {
            let ended = until_all_complete(socket, &["r", "o"]).await;
            ended_with(&ended["r"], "UNAUTHENTICATED");
            ended_with(&ended["o"], "UNAUTHENTICATED");
        }
        for id in ["r", "o"] {
            let message = receive(&mut session).await;
            assert_eq!(message["type"], "next", "{message}");
            let update = message["payload"]["data"].as_object().unwrap().values().next().unwrap().clone();
            assert_eq!(update["status"], "ACCEPTED", "{id}: {message}");
        }
    }
}

db_test! {
    /// A courier made admin follows someone else's order; once the admin role is taken away,
    /// the next change ends the stream with `FORBIDDEN` instead of reaching them.
    async fn an_admin_role_taken_away_ends_what_only_it_allowed(app) {
        let (restaurant, items) = roma_items(&app).await;
        let (owner, customer, admin) = (
            app.bearer(seed::DEMO_OWNER).await,
            app.bearer(seed::DEMO_CUSTOMER).await,
            app.bearer(seed::DEMO_ADMIN).await,
        );
        let courier_id = GlobalId::encode(NodeKind::User, app.user_id(seed::DEMO_COURIER).await);
        let role = |mutation: &'static str| {
            let (app, admin, courier_id) = (&app, &admin, &courier_id);
            async move {
                let changed = app.graphql_as(Some(admin), &format!("mutation($u: ID!) {{ {mutation}(input: {{ userId: $u, role: ADMIN }}) {{ userErrors {{ code }} }} }}"),
                    json!({ "u": courier_id })).await;
                assert_eq!(changed.data()[mutation]["userErrors"], json!([]), "{}", changed.body);
            }
        };
        role("grantRole").await;
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "admin-no-more")).await;
        let order = placed["order"]["id"].as_str().unwrap().to_owned();
        let courier = app.bearer(seed::DEMO_COURIER).await;
        let mut socket = subscribed(&app.address, &courier, &[("o", ORDER, json!({ "id": order }))]).await;

        // As an admin, the courier hears the order move.
        act(&app, &owner, "acceptOrder", json!({ "orderId": order })).await;
        let heard = receive(&mut socket).await;
        assert_eq!(heard["payload"]["data"]["orderUpdated"]["status"], "ACCEPTED", "{heard}");
        role("revokeRole").await;
        act(&app, &owner, "startPreparingOrder", json!({ "orderId": order })).await;
        let ended = until_all_complete(&mut socket, &["o"]).await;
        ended_with(&ended["o"], "FORBIDDEN");
    }
}

db_test! {
    /// The customer follows their courier with an API token and with their session; the token
    /// is revoked by a write that rang no doorbell, then the courier reports a position: the
    /// token's stream ends with `UNAUTHENTICATED`, the session's gets the position.
    async fn courier_positions_stop_at_a_revoked_token(app) {
        let order = ready_order(&app, "revoked-follower").await;
        let (customer, courier) = (app.bearer(seed::DEMO_CUSTOMER).await, app.bearer(seed::DEMO_COURIER).await);
        let claimed = act(&app, &courier, "claimDelivery", json!({ "orderId": order })).await;
        assert_eq!(claimed["userErrors"], json!([]));
        let (token, token_id) = api_token(&app, &customer).await;
        let follows = [("c", POSITIONS, json!({ "id": order }))];
        let mut by_token = subscribed(&app.address, &token, &follows).await;
        let mut session = subscribed(&app.address, &customer, &follows).await;

        revoke_quietly(&app, &token_id).await;
        let located = app.graphql_as(Some(&courier),
            "mutation($id: ID!) { updateCourierLocation(input: { orderId: $id, location: { latitude: 52.525, longitude: 13.41 } }) { userErrors { code } } }",
            json!({ "id": order })).await;
        assert_eq!(located.data()["updateCourierLocation"]["userErrors"], json!([]), "{}", located.body);

        let ended = until_all_complete(&mut by_token, &["c"]).await;
        ended_with(&ended["c"], "UNAUTHENTICATED");
        let heard = receive(&mut session).await;
        assert_eq!(heard["payload"]["data"]["courierLocation"]["lastLocation"]["latitude"], 52.525, "{heard}");
    }
}

db_test! {
    /// Thousands of tokens nobody subscribes with, revoked at once, are no access change to
    /// the kitchen following its orders: the next order still reaches it, the stream goes on.
    async fn revocations_nobody_follows_leave_other_subscriptions_alone(app) {
        let (restaurant, items) = roma_items(&app).await;
        let (owner, customer) = (app.bearer(seed::DEMO_OWNER).await, app.bearer(seed::DEMO_CUSTOMER).await);
        let mut kitchen = subscribed(&app.address, &owner, &[("r", KITCHEN, json!({ "r": restaurant }))]).await;
        let first = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "before-the-flood")).await;
        let heard = receive(&mut kitchen).await;
        assert_eq!(heard["payload"]["data"]["restaurantOrders"]["id"], first["order"]["id"], "{heard}");

        let customer_id = app.user_id(seed::DEMO_CUSTOMER).await;
        let now = Utc::now();
        for chunk in 0..5 {
            let tokens = (0..1000).map(|n| api_token::ActiveModel {
                user_id: Set(customer_id),
                name: Set(format!("old {chunk}-{n}")),
                token_prefix: Set("dp_old".into()),
                token_hash: Set(format!("revoked-{chunk}-{n}")),
                scopes: Set(json!(["orders:read"])),
                revoked_at: Set(Some(now)),
                created_at: Set(now),
                ..Default::default()
            });
            api_token::Entity::insert_many(tokens).exec(&app.db).await.unwrap();
        }
        let second = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "after-the-flood")).await;
        let heard = receive(&mut kitchen).await;
        assert_eq!(heard["type"], "next", "{heard}");
        assert_eq!(heard["payload"]["data"]["restaurantOrders"]["id"], second["order"]["id"], "{heard}");
    }
}

/// Two replicas over one PostgreSQL database: a token revoked through one ends the
/// subscriptions it runs on the other before the next change reaches them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_replica_ends_its_subscriptions_on_another() {
    let Some(app) = TestApp::spawn(Backend::Postgres, 1).await else {
        return;
    };
    let (other_address, other) = app.another_instance().await;
    tokio::spawn(other.run_until_stopped());
    let (restaurant, items) = roma_items(&app).await;
    let owner = app.bearer(seed::DEMO_OWNER).await;
    let (token, token_id) = api_token(&app, &owner).await;
    let mut socket = subscribed(
        &app.address,
        &token,
        &[("r", KITCHEN, json!({ "r": restaurant }))],
    )
    .await;

    let through_other = |query: &'static str, variables: Value| {
        let (app, owner, other_address) = (&app, &owner, &other_address);
        async move {
            let response = app
                .client
                .post(format!("{other_address}/graphql"))
                .header("authorization", owner)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        }
    };
    let revoked = through_other(
        "mutation($id: ID!) { revokeApiToken(input: { id: $id }) { apiToken { revokedAt } } }",
        json!({ "id": token_id }),
    )
    .await;
    assert!(
        revoked["data"]["revokeApiToken"]["apiToken"]["revokedAt"].is_string(),
        "{revoked}"
    );
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    let placed = place(
        &app,
        &customer,
        order_input(&restaurant, &available(&items, 1), "other-replica"),
    )
    .await;
    assert!(placed["order"]["id"].is_string(), "{placed}");
    let ended = until_all_complete(&mut socket, &["r"]).await;
    ended_with(&ended["r"], "UNAUTHENTICATED");
}
