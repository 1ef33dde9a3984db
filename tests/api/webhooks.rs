//! Webhooks as an integrator meets them: endpoints managed through the API, every delivery
//! verified by the official Standard Webhooks library (npm `standardwebhooks`) in a real
//! receiver process, through receiver outages, rollbacks, replicas and strangers.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use dishpatch::seed;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{
    helpers::{Backend, TestApp, db_test},
    orders::{act, available, order_input, place, roma_items},
};

/// The receiver process (`tests/clients/webhook-receiver.mjs`); killed when dropped.
pub struct Receiver {
    pub url: String,
    control: String,
    client: reqwest::Client,
    _child: tokio::process::Child,
}

impl Receiver {
    pub async fn start() -> Self {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/webhook-receiver.mjs"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .args(["--lifetime-ms", "300000"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the receiver (npm ci --prefix tests/clients first)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the receiver starts")
            .unwrap()
            .expect("the receiver prints its port");
        let port = serde_json::from_str::<Value>(&first).unwrap()["port"]
            .as_u64()
            .unwrap();
        Self {
            url: format!("http://127.0.0.1:{port}/hooks"),
            control: format!("http://127.0.0.1:{port}/control"),
            client: reqwest::Client::new(),
            _child: child,
        }
    }

    pub async fn secrets(&self, secrets: &[&str]) {
        self.client
            .post(format!("{}/secrets", self.control))
            .json(&json!({ "secrets": secrets }))
            .send()
            .await
            .unwrap();
    }

    pub async fn mode(&self, mode: &str) {
        self.client
            .post(format!("{}/mode", self.control))
            .json(&json!({ "mode": mode }))
            .send()
            .await
            .unwrap();
    }

    /// Every request received so far, attempts that were failed on purpose included.
    pub async fn received(&self) -> Vec<Value> {
        self.client
            .get(format!("{}/received", self.control))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `done` holds for what was received (at most `limit`).
    pub async fn until(&self, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let received = self.received().await;
            if done(&received) {
                return received;
            }
            assert!(
                started.elapsed() < limit,
                "the receiver did not get what was expected in {limit:?}: {received:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Deliveries the receiver accepted (answered 2xx).
fn accepted(received: &[Value]) -> Vec<&Value> {
    received.iter().filter(|r| r["mode"] == "ok").collect()
}

fn types(received: &[&Value]) -> Vec<String> {
    received
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_owned())
        .collect()
}

/// Webhook settings for tests: local receivers allowed, quick polls, retries and timeouts.
pub fn quick(settings: &mut dishpatch::config::Settings) {
    settings.webhooks.allow_private_targets = true;
    settings.webhooks.poll_ms = 100;
    settings.webhooks.retry_schedule_secs = vec![1; 5];
    settings.webhooks.timeout_ms = 1_000;
    settings.webhooks.connect_timeout_ms = 500;
}

async fn quick_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, quick).await
}

const CREATE: &str =
    "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) {
    webhookEndpoint { id url events enabled restaurant { slug } }
    secret userErrors { field message code } } }";

const ORDER_EVENTS: [&str; 10] = [
    "ORDER_PLACED",
    "ORDER_ACCEPTED",
    "ORDER_REJECTED",
    "ORDER_PREPARING",
    "ORDER_READY",
    "ORDER_PICKED_UP",
    "ORDER_DELIVERED",
    "ORDER_CANCELLED",
    "DELIVERY_CLAIMED",
    "REVIEW_CREATED",
];

/// Creates an endpoint as `who`; returns the `createWebhookEndpoint` payload.
pub async fn create(app: &TestApp, who: &str, input: Value) -> Value {
    app.graphql_as(Some(who), CREATE, json!({ "input": input }))
        .await
        .data()["createWebhookEndpoint"]
        .clone()
}

/// An endpoint of the demo owner for Trattoria Roma's events at `url`: (id, secret).
pub async fn roma_endpoint(app: &TestApp, url: &str) -> (String, String) {
    let (restaurant, _) = roma_items(app).await;
    let owner = app.bearer(seed::DEMO_OWNER).await;
    let created = create(
        app,
        &owner,
        json!({ "url": url, "events": ORDER_EVENTS, "restaurantId": restaurant, "description": "kitchen printer" }),
    )
    .await;
    assert_eq!(created["userErrors"], json!([]), "{created}");
    (
        created["webhookEndpoint"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

const DELIVERIES: &str = "query($id: ID!, $status: WebhookDeliveryStatus) { node(id: $id) { ... on WebhookEndpoint {
    enabled disabledReason failingSince
    deliveries(first: 50, status: $status) { totalCount edges { node { id messageId eventType status attempts lastStatusCode lastLatencyMs lastError nextAttemptAt deliveredAt payload } } } } } }";

async fn deliveries(app: &TestApp, who: &str, endpoint: &str, status: Option<&str>) -> Value {
    app.graphql_as(
        Some(who),
        DELIVERIES,
        json!({ "id": endpoint, "status": status }),
    )
    .await
    .data()["node"]
        .clone()
}

db_test! {
    /// The whole journey of an order reaches the restaurant's endpoint: each event once, in
    /// order, signed so the official library verifies it, with the documented payload.
    setup = quick_app,
    async fn an_order_journey_arrives_signed_and_in_order(app) {
        let hooks = Receiver::start().await;
        let (endpoint, secret) = roma_endpoint(&app, &hooks.url).await;
        assert!(secret.starts_with("whsec_"));
        hooks.secrets(&[&secret]).await;
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let courier = app.bearer(seed::DEMO_COURIER).await;
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 2), "hook-journey")).await;
        let order = placed["order"]["id"].as_str().unwrap().to_owned();
        for (who, mutation) in [
            (&owner, "acceptOrder"),
            (&owner, "startPreparingOrder"),
            (&owner, "markOrderReady"),
        ] {
            assert_eq!(act(&app, who, mutation, json!({ "orderId": order })).await["userErrors"], json!([]));
        }
        let claimed = app
            .graphql_as(Some(&courier), "mutation($input: OrderInput!) { claimDelivery(input: $input) { userErrors { code } } }", json!({ "input": { "orderId": order } }))
            .await;
        assert_eq!(claimed.data()["claimDelivery"]["userErrors"], json!([]));
        for mutation in ["confirmPickup", "confirmDelivery"] {
            assert_eq!(act(&app, &courier, mutation, json!({ "orderId": order })).await["userErrors"], json!([]));
        }
        let review = app
            .graphql_as(Some(&customer), "mutation($input: CreateReviewInput!) { createReview(input: $input) { userErrors { code } } }", json!({ "input": { "orderId": order, "rating": 5, "body": "hot and fast" } }))
            .await;
        assert_eq!(review.data()["createReview"]["userErrors"], json!([]));

        let expected = [
            "order.placed",
            "order.accepted",
            "order.preparing",
            "order.ready",
            "delivery.claimed",
            "order.picked_up",
            "order.delivered",
            "review.created",
        ];
        hooks.until(Duration::from_secs(30), |r| r.len() >= expected.len()).await;
        // Nothing more comes.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let received = hooks.received().await;
        let got = accepted(&received);
        assert_eq!(types(&got), expected, "{received:#?}");
        for delivery in &got {
            assert_eq!(delivery["verifiedWith"], json!([true]), "{delivery}");
            assert_eq!(delivery["signatures"], 1);
            assert_eq!(delivery["contentType"], "application/json");
            assert_eq!(delivery["payload"]["version"], 1);
            assert!(delivery["payload"]["timestamp"].as_str().unwrap().ends_with('Z'));
        }
        let mut ids: Vec<&str> = got.iter().map(|d| d["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), expected.len(), "every event has its own webhook-id");

        // The payload names the order with its API id and says what changed.
        let first = &got[0]["payload"]["data"];
        assert_eq!(first["order"]["id"], order.as_str());
        assert_eq!(first["order"]["restaurantId"], restaurant.as_str());
        assert_eq!(first["order"]["status"], "PLACED");
        assert_eq!(first["order"]["total"], placed["order"]["total"].as_object().map(|t| json!({"amount": t["amount"], "currency": first["order"]["total"]["currency"]})).unwrap());
        assert_eq!(first["order"]["lines"].as_array().unwrap().len(), 2);
        assert_eq!(first["change"], json!({ "from": null, "to": "PLACED", "actorId": first["order"]["customerId"], "reason": null, "at": first["change"]["at"] }));
        let versions: Vec<i64> = got[..7].iter().map(|d| d["payload"]["data"]["order"]["version"].as_i64().unwrap()).collect();
        assert_eq!(versions, (1..=7).collect::<Vec<_>>());
        assert!(got[4]["payload"]["data"]["courierId"].is_string());
        assert_eq!(got[7]["payload"]["data"]["review"]["rating"], 5);
        assert_eq!(got[7]["payload"]["data"]["review"]["orderId"], order.as_str());

        // The endpoint's log says the same: eight deliveries, each in one attempt (recorded
        // by the sender right after the receiver answered).
        log_until(&app, &owner, &endpoint, |log| {
            log["deliveries"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["status"] == "DELIVERED")
        })
        .await;
        let log = deliveries(&app, &owner, &endpoint, Some("DELIVERED")).await;
        assert_eq!(log["deliveries"]["totalCount"], 8);
        for edge in log["deliveries"]["edges"].as_array().unwrap() {
            let node = &edge["node"];
            assert_eq!((node["attempts"].as_i64(), node["lastStatusCode"].as_i64()), (Some(1), Some(204)), "{node}");
            assert!(node["nextAttemptAt"].is_null() && node["deliveredAt"].is_string());
            let payload: Value = serde_json::from_str(node["payload"].as_str().unwrap()).unwrap();
            let sent = got.iter().find(|d| d["id"] == node["messageId"]).expect("each logged delivery was received");
            assert_eq!(payload, sent["payload"]);
        }
        assert_eq!(deliveries(&app, &owner, &endpoint, Some("PENDING")).await["deliveries"]["totalCount"], 0);

        // The attempts are counted on /metrics (this process made exactly these).
        let metrics = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("dishpatch_webhook_attempts_total{outcome=\"delivered\"} 8"), "{metrics}");
        assert!(metrics.contains("dishpatch_webhook_attempt_duration_seconds_count 8"));
        assert!(metrics.contains("dishpatch_webhook_pending_deliveries"));
        // The secret is stored sealed, not as given.
        let stored = app.db.query_one_raw(sea_orm::Statement::from_string(app.db.get_database_backend(), "SELECT secret_ciphertext FROM webhooks")).await.unwrap().unwrap();
        let stored: String = stored.try_get_by_index(0).unwrap();
        assert!(stored.starts_with("v1.") && !stored.contains(&secret["whsec_".len()..]));
    }
}

db_test! {
    /// A receiver that answers 500, then times out, then is unreachable gets every event
    /// once it recovers, each time with the same `webhook-id`; the log shows the attempts.
    setup = quick_app,
    async fn failing_receivers_get_retries_with_the_same_webhook_id(app) {
        let hooks = Receiver::start().await;
        let (endpoint, secret) = roma_endpoint(&app, &hooks.url).await;
        hooks.secrets(&[&secret]).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;

        // 500s: retried after a second each.
        hooks.mode("fail").await;
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "hook-retry")).await;
        let order = placed["order"]["id"].as_str().unwrap().to_owned();
        hooks.until(Duration::from_secs(20), |r| r.len() >= 2).await;
        let log = deliveries(&app, &owner, &endpoint, None).await;
        let node = &log["deliveries"]["edges"][0]["node"];
        assert_eq!(node["status"], "PENDING");
        assert_eq!(node["lastStatusCode"], 500);
        assert!(node["lastError"].as_str().unwrap().contains("failing on purpose"), "{node}");
        assert!(node["nextAttemptAt"].is_string());
        assert!(log["failingSince"].is_string());
        hooks.mode("ok").await;
        let received = hooks.until(Duration::from_secs(20), |r| !accepted(r).is_empty()).await;
        let ids: Vec<&Value> = received.iter().map(|r| &r["id"]).collect();
        assert!(ids.len() >= 3 && ids.iter().all(|id| *id == ids[0]), "{received:#?}");
        assert!(received.iter().all(|r| r["verifiedWith"] == json!([true])));

        // Timeouts: the receiver holds the request past `timeout_ms`.
        hooks.mode("hang").await;
        assert_eq!(act(&app, &owner, "acceptOrder", json!({ "orderId": order })).await["userErrors"], json!([]));
        hooks.until(Duration::from_secs(20), |r| r.iter().filter(|r| r["mode"] == "hang").count() >= 2).await;
        let log = deliveries(&app, &owner, &endpoint, Some("PENDING")).await;
        let node = &log["deliveries"]["edges"][0]["node"];
        assert!(node["lastError"].as_str().unwrap().contains("timed out"), "{node}");
        assert!(node["lastStatusCode"].is_null());
        hooks.mode("ok").await;
        let received = hooks.until(Duration::from_secs(20), |r| accepted(r).len() >= 2).await;
        let accepted_now = accepted(&received);
        assert_eq!(types(&accepted_now), ["order.placed", "order.accepted"]);
        let accept_id = &accepted_now[1]["id"];
        assert!(received.iter().filter(|r| r["type"] == "order.accepted").all(|r| &r["id"] == accept_id));

        // Connection refused: nothing listens at the endpoint's new URL; then it comes back.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_url = format!("http://{}/gone", closed.local_addr().unwrap());
        drop(closed);
        let moved = app
            .graphql_as(Some(&owner), "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { webhookEndpoint { url } userErrors { code } } }", json!({ "input": { "id": endpoint, "url": closed_url } }))
            .await;
        assert_eq!(moved.data()["updateWebhookEndpoint"]["userErrors"], json!([]));
        assert_eq!(act(&app, &owner, "startPreparingOrder", json!({ "orderId": order })).await["userErrors"], json!([]));
        let started = Instant::now();
        let node = loop {
            let log = deliveries(&app, &owner, &endpoint, Some("PENDING")).await;
            let node = log["deliveries"]["edges"][0]["node"].clone();
            if node["attempts"].as_i64().unwrap_or_default() >= 1 {
                break node;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no attempt: {log}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(node["lastError"].as_str().unwrap().contains("could not connect"), "{node}");
        let back = app
            .graphql_as(Some(&owner), "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { userErrors { code } } }", json!({ "input": { "id": endpoint, "url": hooks.url } }))
            .await;
        assert_eq!(back.data()["updateWebhookEndpoint"]["userErrors"], json!([]));
        let received = hooks.until(Duration::from_secs(20), |r| accepted(r).len() >= 3).await;
        let preparing: Vec<&Value> = accepted(&received).into_iter().filter(|r| r["type"] == "order.preparing").collect();
        assert_eq!(preparing.len(), 1);
        assert_eq!(preparing[0]["id"], node["messageId"]);
        // The receiver has it; the sender records it right after.
        let log = log_until(&app, &owner, &endpoint, |log| {
            log["deliveries"]["totalCount"] == 3
                && log["deliveries"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["status"] == "DELIVERED")
        })
        .await;
        assert!(log["failingSince"].is_null(), "a success ends the failure streak: {log}");
    }
}

/// Settings where a delivery fails for good after two retries (a second apart).
async fn impatient_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, |settings| {
        quick(settings);
        settings.webhooks.retry_schedule_secs = vec![1, 1];
    })
    .await
}

const REDELIVER: &str = "mutation($input: RedeliverWebhookInput!) { redeliverWebhook(input: $input) { delivery { id status messageId } userErrors { field code } } }";

/// Polls the endpoint's log until `done` holds.
async fn log_until(
    app: &TestApp,
    who: &str,
    endpoint: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let log = deliveries(app, who, endpoint, None).await;
        if done(&log) {
            return log;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not reached: {log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A receiver that answers 500, Roma's endpoint pointing at it, and an order placed there:
/// (receiver, endpoint id, the owner's authorization).
async fn order_to_a_failing_receiver(app: &TestApp, key: &str) -> (Receiver, String, String) {
    let hooks = Receiver::start().await;
    let (endpoint, secret) = roma_endpoint(app, &hooks.url).await;
    hooks.secrets(&[&secret]).await;
    hooks.mode("fail").await;
    let (restaurant, items) = roma_items(app).await;
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    place(
        app,
        &customer,
        order_input(&restaurant, &available(&items, 1), key),
    )
    .await;
    (hooks, endpoint, app.bearer(seed::DEMO_OWNER).await)
}

db_test! {
    /// Retries end: after the first try and two retries the delivery is failed; its owner
    /// sends it again with `redeliverWebhook`, under the same `webhook-id`.
    setup = impatient_app,
    async fn failed_deliveries_can_be_redelivered(app) {
        let (hooks, endpoint, owner) = order_to_a_failing_receiver(&app, "hook-fail").await;
        let log = log_until(&app, &owner, &endpoint, |log| log["deliveries"]["edges"][0]["node"]["status"] == "FAILED").await;
        let failed = log["deliveries"]["edges"][0]["node"].clone();
        assert_eq!(failed["attempts"], 3, "the first try and two retries");
        assert!(failed["nextAttemptAt"].is_null());
        assert_eq!(hooks.received().await.len(), 3);
        assert_eq!(log["enabled"], true, "failing for a few seconds does not disable an endpoint");

        hooks.mode("ok").await;
        let again = app.graphql_as(Some(&owner), REDELIVER, json!({ "input": { "deliveryId": failed["id"] } })).await;
        let again = &again.data()["redeliverWebhook"];
        assert_eq!(again["userErrors"], json!([]));
        assert_eq!(again["delivery"]["messageId"], failed["messageId"]);
        assert_eq!(again["delivery"]["status"], "PENDING");
        let received = hooks.until(Duration::from_secs(20), |r| !accepted(r).is_empty()).await;
        let got = accepted(&received);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["id"], failed["messageId"], "a redelivery keeps the webhook-id");
        assert_eq!(got[0]["verifiedWith"], json!([true]));
        assert_eq!(deliveries(&app, &owner, &endpoint, Some("FAILED")).await["deliveries"]["totalCount"], 1, "the failed one keeps its history");
    }
}

/// Settings where an endpoint failing every attempt for two seconds is disabled (retries come
/// a second apart, so the attempt after two seconds finds it failing that long).
async fn disabling_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, |settings| {
        quick(settings);
        settings.webhooks.retry_schedule_secs = vec![1; 8];
        settings.webhooks.disable_after_secs = 2;
    })
    .await
}

db_test! {
    /// An endpoint that fails for too long is disabled with the reason; nothing is sent to it
    /// meanwhile; its owner enables it again and what waited is delivered.
    setup = disabling_app,
    async fn endpoints_failing_too_long_are_disabled_until_their_owner_enables_them(app) {
        let (hooks, endpoint, owner) = order_to_a_failing_receiver(&app, "hook-disable").await;
        let log = log_until(&app, &owner, &endpoint, |log| log["enabled"] == false).await;
        assert!(log["disabledReason"].as_str().unwrap().contains("failed"), "{log}");
        let waiting = log["deliveries"]["edges"][0]["node"].clone();
        assert_eq!(waiting["status"], "PENDING", "{waiting}");
        let attempts = hooks.received().await.len();
        assert!(attempts >= 3, "{attempts}");

        // Disabled: nothing is sent, a test or a redelivery is refused.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(hooks.received().await.len(), attempts);
        let refused = app.graphql_as(Some(&owner), REDELIVER, json!({ "input": { "deliveryId": waiting["id"] } })).await;
        assert_eq!(refused.data()["redeliverWebhook"]["userErrors"][0]["code"], "INVALID");
        let refused = app.graphql_as(Some(&owner), "mutation($input: WebhookEndpointIdInput!) { sendTestWebhook(input: $input) { userErrors { field code } } }", json!({ "input": { "id": endpoint } })).await;
        assert_eq!(refused.data()["sendTestWebhook"]["userErrors"], json!([{ "field": ["input", "id"], "code": "INVALID" }]));

        hooks.mode("ok").await;
        let enabled = app
            .graphql_as(Some(&owner), "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { webhookEndpoint { enabled disabledReason failingSince } userErrors { code } } }", json!({ "input": { "id": endpoint, "enabled": true } }))
            .await;
        assert_eq!(enabled.data()["updateWebhookEndpoint"]["webhookEndpoint"], json!({ "enabled": true, "disabledReason": null, "failingSince": null }));
        let received = hooks.until(Duration::from_secs(20), |r| !accepted(r).is_empty()).await;
        let got = accepted(&received);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["id"], waiting["messageId"]);
        let log = log_until(&app, &owner, &endpoint, |log| log["deliveries"]["edges"][0]["node"]["status"] == "DELIVERED").await;
        assert_eq!(log["enabled"], true);
    }
}
db_test! {
    /// After a rotation deliveries carry two signatures, and each secret alone verifies them
    /// with the official library; a test delivery arrives on request.
    setup = quick_app,
    async fn rotated_secrets_sign_alongside_the_old_one_and_tests_arrive(app) {
        let hooks = Receiver::start().await;
        let (endpoint, old) = roma_endpoint(&app, &hooks.url).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let rotated = app
            .graphql_as(Some(&owner), "mutation($input: WebhookEndpointIdInput!) { rotateWebhookSecret(input: $input) { secret webhookEndpoint { previousSecretExpiresAt } userErrors { code } } }", json!({ "input": { "id": endpoint } }))
            .await;
        let rotated = &rotated.data()["rotateWebhookSecret"];
        let new = rotated["secret"].as_str().unwrap().to_owned();
        assert_ne!(new, old);
        assert!(rotated["webhookEndpoint"]["previousSecretExpiresAt"].is_string());
        hooks.secrets(&[&old, &new, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]).await;
        let sent = app
            .graphql_as(Some(&owner), "mutation($input: WebhookEndpointIdInput!) { sendTestWebhook(input: $input) { delivery { eventType status } userErrors { code } } }", json!({ "input": { "id": endpoint } }))
            .await;
        assert_eq!(sent.data()["sendTestWebhook"]["delivery"]["eventType"], "WEBHOOK_TEST");
        let received = hooks.until(Duration::from_secs(20), |r| !r.is_empty()).await;
        assert_eq!(received[0]["type"], "webhook.test");
        assert_eq!(received[0]["signatures"], 2);
        assert_eq!(received[0]["verifiedWith"], json!([true, true, false]), "old and new verify, a stranger's secret does not");
        assert_eq!(received[0]["payload"]["data"]["endpointId"], endpoint.as_str());
    }
}

db_test! {
    /// A change that rolls back at commit, after its deliveries were written, sends nothing;
    /// the next change arrives alone.
    setup = quick_app,
    async fn a_rolled_back_order_sends_nothing(app) {
        let hooks = Receiver::start().await;
        let (_, secret) = roma_endpoint(&app, &hooks.url).await;
        hooks.secrets(&[&secret]).await;
        // A tripwire: every delivery row written makes the transaction fail at COMMIT (a
        // deferred foreign key to nothing), after the order, its event and its deliveries.
        let postgres = app.db.get_database_backend() == sea_orm::DbBackend::Postgres;
        let setup: &[&str] = if postgres {
            &[
                "CREATE TABLE tripwire_parent (id BIGINT PRIMARY KEY)",
                "CREATE TABLE tripwire (parent BIGINT REFERENCES tripwire_parent (id) DEFERRABLE INITIALLY DEFERRED)",
                "CREATE FUNCTION trip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO tripwire (parent) VALUES (-1); RETURN NEW; END $$",
                "CREATE TRIGGER trip AFTER INSERT ON webhook_deliveries FOR EACH ROW EXECUTE FUNCTION trip()",
            ]
        } else {
            &[
                "CREATE TABLE tripwire_parent (id INTEGER PRIMARY KEY)",
                "CREATE TABLE tripwire (parent INTEGER REFERENCES tripwire_parent (id) DEFERRABLE INITIALLY DEFERRED)",
                "CREATE TRIGGER trip AFTER INSERT ON webhook_deliveries BEGIN INSERT INTO tripwire (parent) VALUES (-1); END",
            ]
        };
        for statement in setup {
            app.db.execute_unprepared(statement).await.unwrap();
        }
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let failed = app
            .graphql_as(Some(&customer), "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } } }", json!({ "input": order_input(&restaurant, &available(&items, 1), "hook-rollback") }))
            .await;
        assert_eq!(failed.error_code(), "INTERNAL_SERVER_ERROR", "{:#}", failed.body);
        let count = |sql: &'static str| {
            let db = app.db.clone();
            async move {
                let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
                row.try_get_by_index::<i64>(0).unwrap()
            }
        };
        assert_eq!(count("SELECT COUNT(*) FROM orders WHERE idempotency_key = 'hook-rollback'").await, 0);
        assert_eq!(count("SELECT COUNT(*) FROM webhook_deliveries").await, 0);

        app.db.execute_unprepared("DROP TRIGGER trip ON webhook_deliveries").await.ok();
        app.db.execute_unprepared("DROP TRIGGER IF EXISTS trip").await.ok();
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "hook-after")).await;
        let received = hooks.until(Duration::from_secs(20), |r| !r.is_empty()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let received_now = hooks.received().await;
        assert_eq!(received_now.len(), 1, "{received:#?}");
        assert_eq!(received_now[0]["payload"]["data"]["order"]["id"], placed["order"]["id"]);
    }
}

db_test! {
    /// Two servers over one database, both sending: every event reaches the receiver once.
    setup = quick_app,
    async fn two_replicas_send_each_event_once(app) {
        let hooks = Receiver::start().await;
        let (_, secret) = roma_endpoint(&app, &hooks.url).await;
        hooks.secrets(&[&secret]).await;
        let mut settings = crate::helpers::test_settings(&app.database_url);
        quick(&mut settings);
        let other = dishpatch::app::Application::build(settings).await.unwrap();
        let other_address = format!("http://127.0.0.1:{}", other.port());
        tokio::spawn(other.run_until_stopped());
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let mut orders = Vec::new();
        for n in 0..6 {
            let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), &format!("hook-replica-{n}"))).await;
            orders.push(placed["order"]["id"].as_str().unwrap().to_owned());
        }
        // Accept half of them through the other replica.
        for order in &orders[..3] {
            let accepted = app.client
                .post(format!("{other_address}/graphql"))
                .header("authorization", &owner)
                .json(&json!({ "query": "mutation($input: OrderInput!) { acceptOrder(input: $input) { userErrors { code } } }", "variables": { "input": { "orderId": order } } }))
                .send().await.unwrap().json::<Value>().await.unwrap();
            assert_eq!(accepted["data"]["acceptOrder"]["userErrors"], json!([]));
        }
        hooks.until(Duration::from_secs(30), |r| r.len() >= 9).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let received = hooks.received().await;
        assert_eq!(received.len(), 9, "{received:#?}");
        let mut ids: Vec<&str> = received.iter().map(|r| r["id"].as_str().unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 9);
        // Per order, in order.
        for order in &orders[..3] {
            let of_order: Vec<&str> = received.iter().filter(|r| r["payload"]["data"]["order"]["id"] == order.as_str()).map(|r| r["type"].as_str().unwrap()).collect();
            assert_eq!(of_order, ["order.placed", "order.accepted"]);
        }
    }
}

/// A server that refuses private targets (the default), with quick sending.
async fn guarded_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, |settings| {
        quick(settings);
        settings.webhooks.allow_private_targets = false;
    })
    .await
}

db_test! {
    /// Endpoints cannot point into the server's own network, by address or by name, when
    /// saved or (if a name moved there later) when sent to.
    setup = guarded_app,
    async fn endpoints_cannot_reach_private_addresses(app) {
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://localhost/hook",
            "http://hooks.example.com/hook",
            "https://user:pw@hooks.example.com/hook",
            "file:///etc/passwd",
            "not a url",
        ] {
            let created = create(&app, &admin, json!({ "url": url, "events": ["ORDER_PLACED"] })).await;
            assert_eq!(created["webhookEndpoint"], Value::Null, "{url}");
            assert_eq!(created["userErrors"][0]["field"], json!(["input", "url"]), "{url}: {created}");
            assert_eq!(created["userErrors"][0]["code"], "INVALID", "{url}");
        }
        // A stored endpoint whose name now resolves to loopback (as after a DNS change), and
        // one stored with a private address: attempts are refused, nothing reaches the port.
        let hooks = Receiver::start().await;
        let port = hooks.url.rsplit(':').next().unwrap().split('/').next().unwrap().to_owned();
        let admin_id = app.user_id(seed::DEMO_ADMIN).await;
        // Sealed as the server seals (with the tests' signing key), so only the address fails.
        let sealed = dishpatch::webhooks::signing::SecretBox::new("a-signing-key-for-the-tests-only-0123456789")
            .seal(&dishpatch::webhooks::signing::new_secret());
        for (n, url) in [format!("https://localhost:{port}/hooks"), format!("https://127.0.0.1:{port}/hooks")].iter().enumerate() {
            app.db.execute_unprepared(&format!(
                "INSERT INTO webhooks (user_id, restaurant_id, url, events, secret_ciphertext, is_active, created_at, description) \
                 VALUES ({admin_id}, NULL, '{url}', '[\"order.placed\"]', '{sealed}', {}, '2026-12-06 00:00:00+00:00', 'moved {n}')",
                if app.db.get_database_backend() == sea_orm::DbBackend::Postgres { "TRUE" } else { "1" }
            )).await.unwrap();
        }
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        place(&app, &customer, order_input(&restaurant, &available(&items, 1), "hook-ssrf")).await;
        let started = Instant::now();
        let errors = loop {
            let endpoints = app.graphql_as(Some(&admin), "{ viewer { webhookEndpoints { url deliveries(first: 1) { edges { node { attempts lastError } } } } } }", json!({})).await;
            let nodes: Vec<Value> = endpoints.data()["viewer"]["webhookEndpoints"].as_array().unwrap().iter().map(|e| e["deliveries"]["edges"][0]["node"].clone()).collect();
            if nodes.len() == 2 && nodes.iter().all(|n| n["attempts"].as_i64().unwrap_or_default() >= 1) {
                break nodes;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "no attempts: {nodes:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for error in &errors {
            assert!(error["lastError"].as_str().unwrap().contains("private, loopback"), "{error}");
        }
        assert!(hooks.received().await.is_empty());
    }
}

db_test! {
    /// Strangers cannot create endpoints for a restaurant that is not theirs, nor see, change,
    /// test, rotate, redeliver or delete someone else's; a token needs `webhooks:write`; an
    /// endpoint hears only its own restaurant.
    setup = quick_app,
    async fn strangers_cannot_touch_others_endpoints(app) {
        let hooks = Receiver::start().await;
        let (endpoint, secret) = roma_endpoint(&app, &hooks.url).await;
        hooks.secrets(&[&secret]).await;
        let (restaurant, _) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let courier = app.bearer(seed::DEMO_COURIER).await;

        // Anonymous: not signed in.
        let anonymous = app.graphql(CREATE, json!({ "input": { "url": hooks.url, "events": ["ORDER_PLACED"], "restaurantId": restaurant } })).await;
        assert_eq!(anonymous.error_code(), "UNAUTHENTICATED");
        // A customer for someone else's restaurant, or for every restaurant.
        let refused = create(&app, &customer, json!({ "url": hooks.url, "events": ["ORDER_PLACED"], "restaurantId": restaurant })).await;
        assert_eq!((refused["userErrors"][0]["code"].as_str(), refused["webhookEndpoint"].is_null()), (Some("NOT_FOUND"), true));
        let refused = create(&app, &customer, json!({ "url": hooks.url, "events": ["ORDER_PLACED"] })).await;
        assert_eq!(refused["userErrors"][0]["field"], json!(["input", "restaurantId"]));
        // Not even an admin can follow a restaurant that does not exist.
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let nowhere = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::Restaurant, 999_999);
        let refused = create(&app, &admin, json!({ "url": hooks.url, "events": ["ORDER_PLACED"], "restaurantId": nowhere })).await;
        assert_eq!(refused["userErrors"][0]["code"], "NOT_FOUND");
        // A token of the owner without `webhooks:write`, then with it.
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let narrow = format!("Bearer {}", app.tokens.issue(owner_id, Some(&["orders:read".to_owned()]), None, chrono::Utc::now()));
        let forbidden = app.graphql_as(Some(&narrow), CREATE, json!({ "input": { "url": hooks.url, "events": ["ORDER_PLACED"], "restaurantId": restaurant } })).await;
        assert_eq!(forbidden.error_code(), "FORBIDDEN");
        let listing = app.graphql_as(Some(&narrow), "{ viewer { webhookEndpoints { id } } }", json!({})).await;
        assert_eq!(listing.error_code(), "FORBIDDEN");
        let scoped = format!("Bearer {}", app.tokens.issue(owner_id, Some(&["webhooks:write".to_owned()]), None, chrono::Utc::now()));
        let made = create(&app, &scoped, json!({ "url": hooks.url, "events": ["ORDER_CANCELLED"], "restaurantId": restaurant })).await;
        assert_eq!(made["userErrors"], json!([]));

        // Someone else's endpoint does not exist for them, by node or by mutation.
        for who in [&customer, &courier, &narrow] {
            let node = app.graphql_as(Some(who), "query($id: ID!) { node(id: $id) { id } }", json!({ "id": endpoint })).await;
            assert_eq!(node.data()["node"], Value::Null);
        }
        let by_id = json!({ "input": { "id": endpoint } });
        for (mutation, input_type, selection) in [
            ("updateWebhookEndpoint", "UpdateWebhookEndpointInput", "webhookEndpoint { id }"),
            ("deleteWebhookEndpoint", "WebhookEndpointIdInput", "deletedId"),
            ("rotateWebhookSecret", "WebhookEndpointIdInput", "secret"),
            ("sendTestWebhook", "WebhookEndpointIdInput", "delivery { id }"),
        ] {
            let query = format!("mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ {selection} userErrors {{ field code }} }} }}");
            let refused = app.graphql_as(Some(&customer), &query, by_id.clone()).await;
            assert_eq!(refused.data()[mutation]["userErrors"], json!([{ "field": ["input", "id"], "code": "NOT_FOUND" }]), "{mutation}");
        }
        // Its deliveries neither.
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let test = app.graphql_as(Some(&owner), "mutation($input: WebhookEndpointIdInput!) { sendTestWebhook(input: $input) { delivery { id } } }", by_id.clone()).await;
        let delivery = test.data()["sendTestWebhook"]["delivery"]["id"].clone();
        let node = app.graphql_as(Some(&customer), "query($id: ID!) { node(id: $id) { id } }", json!({ "id": delivery })).await;
        assert_eq!(node.data()["node"], Value::Null);
        let redeliver = app.graphql_as(Some(&customer), "mutation($input: RedeliverWebhookInput!) { redeliverWebhook(input: $input) { delivery { id } userErrors { code } } }", json!({ "input": { "deliveryId": delivery } })).await;
        assert_eq!(redeliver.data()["redeliverWebhook"]["userErrors"][0]["code"], "NOT_FOUND");
        let others = app.graphql_as(Some(&customer), "query($id: ID!) { node(id: $id) { ... on User { webhookEndpoints { id } } } }", json!({ "id": dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, owner_id).0 })).await;
        assert_eq!(others.error_code(), "FORBIDDEN");
        // The owner still has both, untouched.
        let mine = app.graphql_as(Some(&owner), "{ viewer { webhookEndpoints { id enabled } } }", json!({})).await;
        assert_eq!(mine.data()["viewer"]["webhookEndpoints"].as_array().unwrap().len(), 2);

        // An order at another restaurant does not reach Roma's endpoint.
        hooks.until(Duration::from_secs(20), |r| !r.is_empty()).await;
        let other = app.graphql("{ restaurants(first: 20, filter: { openNow: true }) { edges { node { id slug menu { items { id available } } } } } }", json!({})).await;
        let other = other.data()["restaurants"]["edges"].as_array().unwrap().iter().find(|e| e["node"]["slug"] != "trattoria-roma").expect("another open restaurant")["node"].clone();
        let item = other["menu"]["items"].as_array().unwrap().iter().find(|i| i["available"] == true).unwrap()["id"].as_str().unwrap().to_owned();
        let placed = place(&app, &customer, order_input(other["id"].as_str().unwrap(), &[item], "hook-elsewhere")).await;
        assert!(placed["order"]["id"].is_string(), "{placed}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let received = hooks.received().await;
        assert!(received.iter().all(|r| r["type"] == "webhook.test"), "{received:#?}");
    }
}

/// The catalogue in the docs names every event type the schema has.
#[test]
fn the_event_catalogue_documents_every_type() {
    let catalogue =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/WEBHOOKS.md")).unwrap();
    for kind in dishpatch::webhooks::EventType::ALL {
        assert!(
            catalogue.contains(&format!("`{}`", kind.as_str())),
            "{} is not in docs/WEBHOOKS.md",
            kind.as_str()
        );
    }
}

/// A server that records deliveries but does not send them.
async fn silent_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, |settings| {
        quick(settings);
        settings.webhooks.send = false;
    })
    .await
}

db_test! {
    /// A delivery leased by a replica that died is sent by another once the lease runs out,
    /// not before.
    setup = silent_app,
    async fn a_dead_replicas_lease_runs_out_and_another_sends(app) {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let hooks = Receiver::start().await;
        let (_, secret) = roma_endpoint(&app, &hooks.url).await;
        hooks.secrets(&[&secret]).await;
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        place(&app, &customer, order_input(&restaurant, &available(&items, 1), "hook-lease")).await;
        // As if a replica took the delivery and died: leased for three more seconds.
        let leased = entities::webhook_delivery::Entity::update_many()
            .col_expr(
                entities::webhook_delivery::Column::LeaseUntil,
                Expr::value(chrono::Utc::now() + chrono::Duration::seconds(3)),
            )
            .filter(entities::webhook_delivery::Column::Attempts.eq(0))
            .exec(&app.db)
            .await
            .unwrap();
        assert_eq!(leased.rows_affected, 1);
        let mut settings = crate::helpers::test_settings(&app.database_url);
        quick(&mut settings);
        let sender = dishpatch::app::Application::build(settings).await.unwrap();
        tokio::spawn(sender.run_until_stopped());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(hooks.received().await.is_empty(), "sent while another replica held it");
        let received = hooks.until(Duration::from_secs(20), |r| !r.is_empty()).await;
        assert_eq!(received.len(), 1);
        assert_eq!(received[0]["type"], "order.placed");
        assert_eq!(received[0]["verifiedWith"], json!([true]));
    }
}

db_test! {
    /// Sent and failed deliveries older than `webhooks.keep_days` are deleted by a sending
    /// process; pending ones and recent ones stay.
    setup = silent_app,
    async fn old_sent_and_failed_deliveries_are_deleted(app) {
        use entities::{WebhookDeliveryStatus as Status, webhook, webhook_delivery};
        use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
        let (_, _) = roma_endpoint(&app, "http://127.0.0.1:9/hooks").await;
        let endpoint = webhook::Entity::find().one(&app.db).await.unwrap().expect("the endpoint");
        let now = chrono::Utc::now();
        let mut ids = Vec::new();
        for (n, (status, age_days)) in [
            (Status::Delivered, 40),
            (Status::Failed, 31),
            (Status::Pending, 40),
            (Status::Delivered, 29),
            (Status::Failed, 1),
        ]
        .into_iter()
        .enumerate()
        {
            let created = now - chrono::Duration::days(age_days);
            let row = webhook_delivery::ActiveModel {
                webhook_id: Set(endpoint.id),
                event_type: Set("order.placed".to_owned()),
                payload: Set(json!({ "n": n })),
                status: Set(status),
                attempts: Set(1),
                // A pending one not due for a day: the sender leaves it alone meanwhile.
                next_attempt_at: Set((status == Status::Pending).then(|| now + chrono::Duration::days(1))),
                created_at: Set(created),
                delivered_at: Set((status == Status::Delivered).then_some(created)),
                message_id: Set(format!("msg_keep_{n}")),
                ..Default::default()
            }
            .insert(&app.db)
            .await
            .unwrap();
            ids.push(row.id);
        }
        let mut settings = crate::helpers::test_settings(&app.database_url);
        quick(&mut settings);
        let sender = dishpatch::app::Application::build(settings).await.unwrap();
        tokio::spawn(sender.run_until_stopped());
        let mut left = Vec::new();
        for _ in 0..50 {
            left = webhook_delivery::Entity::find().all(&app.db).await.unwrap().into_iter().map(|d| d.id).collect::<Vec<_>>();
            if left.len() <= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        left.sort_unstable();
        assert_eq!(left, vec![ids[2], ids[3], ids[4]], "the old pending one and the recent ones stay");
    }
}
