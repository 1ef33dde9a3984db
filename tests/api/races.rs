//! Mutations racing someone else's deletion of the row they change: each answers as if it came
//! entirely before or entirely after the deletion (here: after, so `NOT_FOUND`), never with an
//! internal error, and leaves nothing pointing at the deleted row.

use std::{future::Future, time::Duration};

use dishpatch::seed;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Statement, TransactionTrait,
};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, GraphqlResponse, TestApp, db_test, decode_id},
    webhooks::{quick, roma_endpoint},
};

/// Runs `mutation` while `deletion` (begun, not committed) holds the rows it deleted; once the
/// mutation waits for them (PostgreSQL: its session waits on a lock; SQLite: a pause, the
/// deletion holds the one write lock), commits the deletion and returns the mutation's answer.
async fn racing(
    app: &TestApp,
    deletion: DatabaseTransaction,
    mutation: impl Future<Output = GraphqlResponse>,
) -> GraphqlResponse {
    let mut mutation = std::pin::pin!(mutation);
    let early = tokio::select! {
        answer = &mut mutation => Some(answer),
        () = waiting_on_a_lock(app) => None,
    };
    deletion.commit().await.expect("the deletion commits");
    match early {
        Some(answer) => answer,
        None => tokio::time::timeout(Duration::from_secs(20), mutation)
            .await
            .expect("the mutation answers once the deletion is committed"),
    }
}

async fn waiting_on_a_lock(app: &TestApp) {
    if app.db.get_database_backend() == DbBackend::Sqlite {
        tokio::time::sleep(Duration::from_millis(500)).await;
        return;
    }
    let waiting = Statement::from_string(
        DbBackend::Postgres,
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    );
    for _ in 0..500 {
        let row = app
            .db
            .query_one_raw(waiting.clone())
            .await
            .expect("pg_stat_activity");
        if row
            .and_then(|row| row.try_get::<i64>("", "n").ok())
            .unwrap_or(0)
            > 0
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the mutation neither answered nor waited for the deleted row within 10 s");
}

fn not_found(payload: &Value) {
    assert_eq!(payload["userErrors"][0]["code"], "NOT_FOUND", "{payload}");
}

db_test! {
    /// Changing an address its owner deletes at the same moment: `NOT_FOUND`.
    async fn an_address_deleted_while_it_is_changed_is_not_found(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let created = app.graphql_as(Some(&customer), "mutation($input: CreateAddressInput!) { createAddress(input: $input) { address { id } userErrors { code } } }",
            json!({ "input": { "label": "Home", "street": "Torstrasse", "houseNumber": "1", "postalCode": "10119", "city": "Berlin",
                               "location": { "latitude": 52.529, "longitude": 13.401 } } })).await;
        let id = created.data()["createAddress"]["address"]["id"].clone();
        let deletion = app.db.begin().await.unwrap();
        entities::address::Entity::delete_by_id(decode_id(&id)).exec(&deletion).await.unwrap();
        let answer = racing(&app, deletion, app.graphql_as(Some(&customer),
            "mutation($input: UpdateAddressInput!) { updateAddress(input: $input) { address { id } userErrors { field code } } }",
            json!({ "input": { "id": id, "label": "Work" } }))).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        not_found(&answer.data()["updateAddress"]);
        assert_eq!(answer.data()["updateAddress"]["address"], Value::Null);
    }
}

/// A server whose endpoints may point at this machine and whose sender, after a first failed
/// attempt, waits an hour (so it touches no endpoint while the test races), and an endpoint of
/// Trattoria Roma's owner at a port nobody listens on.
async fn with_endpoint(backend: Backend) -> Option<(TestApp, String)> {
    let app = TestApp::spawn_with(backend, 1, |settings| {
        quick(settings);
        settings.webhooks.retry_schedule_secs = vec![3600; 5];
    })
    .await?;
    let (endpoint, _) = roma_endpoint(&app, "http://127.0.0.1:9/hooks").await;
    Some((app, endpoint))
}

/// Begins deleting endpoint `id` as `deleteWebhookEndpoint` does: its deliveries, then it.
async fn delete_endpoint(app: &TestApp, id: i64) -> DatabaseTransaction {
    use entities::{webhook, webhook_delivery};
    let deletion = app.db.begin().await.unwrap();
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::WebhookId.eq(id))
        .exec(&deletion)
        .await
        .unwrap();
    webhook::Entity::delete_by_id(id)
        .exec(&deletion)
        .await
        .unwrap();
    deletion
}

/// Deliveries left for endpoint `id`.
async fn deliveries_of(app: &TestApp, id: i64) -> u64 {
    entities::webhook_delivery::Entity::find()
        .filter(entities::webhook_delivery::Column::WebhookId.eq(id))
        .count(&app.db)
        .await
        .unwrap()
}

const SEND_TEST: &str = "mutation($input: WebhookEndpointIdInput!) { sendTestWebhook(input: $input) { delivery { id } userErrors { field code } } }";

db_test! {
    /// Changing, testing or redelivering to an endpoint deleted at the same moment: `NOT_FOUND`,
    /// and no delivery is left behind for the endpoint that is gone.
    setup = with_endpoint,
    async fn an_endpoint_deleted_while_it_is_used_is_not_found(app) {
        let (app, endpoint) = app;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let id = decode_id(&json!(endpoint));

        let deletion = delete_endpoint(&app, id).await;
        let answer = racing(&app, deletion, app.graphql_as(Some(&owner),
            "mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { webhookEndpoint { id } userErrors { field code } } }",
            json!({ "input": { "id": endpoint, "description": "the pass printer" } }))).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        not_found(&answer.data()["updateWebhookEndpoint"]);

        let (endpoint, _) = roma_endpoint(&app, "http://127.0.0.1:9/hooks").await;
        let id = decode_id(&json!(endpoint));
        let deletion = delete_endpoint(&app, id).await;
        let answer = racing(&app, deletion,
            app.graphql_as(Some(&owner), SEND_TEST, json!({ "input": { "id": endpoint } }))).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        not_found(&answer.data()["sendTestWebhook"]);
        assert_eq!(deliveries_of(&app, id).await, 0, "a test delivery was left for a deleted endpoint");

        let (endpoint, _) = roma_endpoint(&app, "http://127.0.0.1:9/hooks").await;
        let id = decode_id(&json!(endpoint));
        let sent = app.graphql_as(Some(&owner), SEND_TEST, json!({ "input": { "id": endpoint } })).await;
        let delivery = sent.data()["sendTestWebhook"]["delivery"]["id"].clone();
        assert!(delivery.is_string(), "{}", sent.body);
        // The sender's first attempt over (refused), so that it holds no lock on the endpoint.
        let attempted = entities::webhook_delivery::Entity::find_by_id(decode_id(&delivery));
        for _ in 0..200 {
            let row = attempted.clone().one(&app.db).await.unwrap().expect("the delivery");
            if row.attempts > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deletion = delete_endpoint(&app, id).await;
        let answer = racing(&app, deletion, app.graphql_as(Some(&owner),
            "mutation($input: RedeliverWebhookInput!) { redeliverWebhook(input: $input) { delivery { id } userErrors { field code } } }",
            json!({ "input": { "deliveryId": delivery } }))).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        not_found(&answer.data()["redeliverWebhook"]);
        assert_eq!(deliveries_of(&app, id).await, 0, "a redelivery was left for a deleted endpoint");
    }
}
