//! Mutations racing another write to the rows they change: each takes effect as if it came
//! wholly before or wholly after the other (here: after, so a deleted row is `NOT_FOUND`), never
//! fails with an internal error, never undoes the other, and leaves nothing pointing at a
//! deleted row.

use std::{future::Future, time::Duration};

use dishpatch::seed;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Statement, TransactionTrait,
};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, db_test, decode_id},
    webhooks::{quick, roma_endpoint},
};

/// Runs `mutation` while `other` (begun, not committed) holds the rows it wrote; once the
/// mutation waits for them (PostgreSQL: its session waits on a lock; SQLite: a pause, `other`
/// holds the one write lock), commits `other` and returns the mutation's answer.
async fn racing<T>(
    app: &TestApp,
    other: DatabaseTransaction,
    mutation: impl Future<Output = T>,
) -> T {
    let mut mutation = std::pin::pin!(mutation);
    let early = tokio::select! {
        answer = &mut mutation => Some(answer),
        () = waiting_on_a_lock(app) => None,
    };
    other.commit().await.expect("the other write commits");
    match early {
        Some(answer) => answer,
        None => tokio::time::timeout(Duration::from_secs(20), mutation)
            .await
            .expect("the mutation answers once the other write is committed"),
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
    panic!("the mutation neither answered nor waited for the other write within 10 s");
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

/// A user's global id.
async fn user_node(app: &TestApp, email: &str) -> String {
    dishpatch::graphql::relay::GlobalId::encode(
        dishpatch::graphql::relay::NodeKind::User,
        app.user_id(email).await,
    )
    .0
}

db_test! {
    /// Two roles granted to one user at the same moment (two admins, or one admin's two tabs):
    /// the user ends with both, neither grant undoing the other.
    async fn roles_granted_at_the_same_moment_are_both_kept(app) {
        use sea_orm::sea_query::Expr;
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let courier = app.user_id(seed::DEMO_COURIER).await;
        // The other grant (CUSTOMER), as grantRole writes it, not yet committed.
        let other = app.db.begin().await.unwrap();
        entities::user::Entity::update_many()
            .col_expr(entities::user::Column::Roles, Expr::value(json!(["courier", "customer"])))
            .filter(entities::user::Column::Id.eq(courier))
            .exec(&other)
            .await
            .unwrap();
        let answer = racing(&app, other, app.graphql_as(Some(&admin),
            "mutation($id: ID!) { grantRole(input: { userId: $id, role: ADMIN }) { user { roles } userErrors { code } } }",
            json!({ "id": user_node(&app, seed::DEMO_COURIER).await }))).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        assert_eq!(answer.data()["grantRole"]["user"]["roles"], json!(["ADMIN", "COURIER", "CUSTOMER"]));
        let stored = entities::user::Entity::find_by_id(courier).one(&app.db).await.unwrap().unwrap();
        assert_eq!(stored.roles, json!(["admin", "courier", "customer"]));
    }
}

db_test! {
    /// The same staff member added twice at the same moment (a double submit): both answers
    /// succeed, and the membership is there once.
    async fn a_staff_member_added_twice_at_once_is_added_once(app) {
        use entities::restaurant_staff;
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let restaurant = app.restaurant_id("sakura-sushi").await;
        let courier = app.user_id(seed::DEMO_COURIER).await;
        let restaurant_id = decode_id(&json!(restaurant));
        // The first submit, as addRestaurantStaff writes it, not yet committed.
        let first = app.db.begin().await.unwrap();
        restaurant_staff::Entity::insert(restaurant_staff::ActiveModel {
            restaurant_id: sea_orm::ActiveValue::Set(restaurant_id),
            user_id: sea_orm::ActiveValue::Set(courier),
            created_at: sea_orm::ActiveValue::Set(chrono::Utc::now()),
        })
        .exec_without_returning(&first)
        .await
        .unwrap();
        let answer = racing(&app, first, app.graphql_as(Some(&admin),
            "mutation($r: ID!, $u: ID!) { addRestaurantStaff(input: { restaurantId: $r, userId: $u }) { restaurant { slug } userErrors { code } } }",
            json!({ "r": restaurant, "u": user_node(&app, seed::DEMO_COURIER).await }))).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        assert_eq!(answer.data()["addRestaurantStaff"], json!({ "restaurant": { "slug": "sakura-sushi" }, "userErrors": [] }));
        let memberships = restaurant_staff::Entity::find()
            .filter(restaurant_staff::Column::UserId.eq(courier))
            .filter(restaurant_staff::Column::RestaurantId.eq(restaurant_id))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(memberships, 1);
    }
}

db_test! {
    /// An item created in a category that its menu's people delete at the same moment: the
    /// item is refused (`NOT_FOUND`), not left live in a category that is gone.
    async fn an_item_is_not_created_in_a_category_deleted_meanwhile(app) {
        use entities::{menu_category, menu_item, restaurant};
        use sea_orm::{QuerySelect, sea_query::{Expr, LockType}};
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let roma = app.restaurant_id("trattoria-roma").await;
        let created = app.graphql_as(Some(&owner),
            "mutation($input: CreateMenuCategoryInput!) { createMenuCategory(input: $input) { category { id } userErrors { code } } }",
            json!({ "input": { "restaurantId": roma, "name": "Specials" } })).await;
        let category = created.data()["createMenuCategory"]["category"]["id"].clone();
        let category_id = decode_id(&category);
        // deleteMenuCategory of the empty category, as it writes it, not yet committed.
        let deletion = app.db.begin().await.unwrap();
        restaurant::Entity::find_by_id(decode_id(&json!(roma)))
            .lock(LockType::NoKeyUpdate)
            .one(&deletion)
            .await
            .unwrap();
        menu_category::Entity::update_many()
            .col_expr(menu_category::Column::DeletedAt, Expr::value(chrono::Utc::now()))
            .filter(menu_category::Column::Id.eq(category_id))
            .exec(&deletion)
            .await
            .unwrap();
        let answer = racing(&app, deletion, app.graphql_as(Some(&owner),
            "mutation($input: CreateMenuItemInput!) { createMenuItem(input: $input) { menuItem { id } userErrors { field code } } }",
            json!({ "input": { "categoryId": category, "name": "Tiramisu", "price": "6.50" } }))).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        not_found(&answer.data()["createMenuItem"]);
        let items = menu_item::Entity::find()
            .filter(menu_item::Column::CategoryId.eq(category_id))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(items, 0, "an item was created in the deleted category");
    }
}

db_test! {
    /// Two logos uploaded for one restaurant at the same moment: the later replaces the
    /// earlier, and the restaurant has one logo, not two.
    async fn two_logos_uploaded_at_once_leave_one(app) {
        use entities::{image, restaurant};
        use sea_orm::{ActiveModelTrait, QuerySelect, sea_query::LockType};
        const UPLOAD: &str = "mutation($input: UploadRestaurantImageInput!) { uploadRestaurantImage(input: $input) { image { width } userErrors { field code } } }";
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let roma = app.restaurant_id("trattoria-roma").await;
        let roma_id = decode_id(&json!(roma));
        let input = json!({ "restaurantId": roma, "kind": "LOGO", "file": null });
        let logo = || crate::photos::picture(400, 400, ::image::ImageFormat::Png);
        let (_, first) = crate::photos::upload(&app, &owner, UPLOAD, input.clone(), logo(), true).await;
        assert_eq!(first["data"]["uploadRestaurantImage"]["userErrors"], json!([]), "{first}");
        let logos = || image::Entity::find()
            .filter(image::Column::RestaurantId.eq(roma_id))
            .filter(image::Column::Kind.eq("logo"));
        let old = logos().one(&app.db).await.unwrap().expect("the first logo");
        // The other upload, as it writes its rows, not yet committed: the old logo out, its own in.
        let other = app.db.begin().await.unwrap();
        restaurant::Entity::find_by_id(roma_id).lock(LockType::NoKeyUpdate).one(&other).await.unwrap();
        image::Entity::delete_by_id(old.id).exec(&other).await.unwrap();
        image::ActiveModel { id: sea_orm::ActiveValue::NotSet, ..old.clone().into() }
            .insert(&other)
            .await
            .unwrap();
        let (status, answer) = racing(&app, other,
            crate::photos::upload(&app, &owner, UPLOAD, input, logo(), true)).await;
        assert_eq!(status, 200);
        assert!(answer.get("errors").is_none(), "{answer}");
        assert_eq!(answer["data"]["uploadRestaurantImage"]["userErrors"], json!([]), "{answer}");
        assert_eq!(logos().count(&app.db).await.unwrap(), 1, "the restaurant has two logos");
    }
}

db_test! {
    /// An order placed while the restaurant's owner deletes its webhook endpoint: the order is
    /// placed (its event goes nowhere), not failed by the endpoint that went.
    setup = with_endpoint,
    async fn an_order_placed_while_its_endpoint_is_deleted_is_placed(app) {
        let (app, endpoint) = app;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let (restaurant, items) = crate::orders::roma_items(&app).await;
        let input = crate::orders::order_input(&restaurant, &crate::orders::available(&items, 1), "race-endpoint");
        let id = decode_id(&json!(endpoint));
        let deletion = delete_endpoint(&app, id).await;
        let answer = racing(&app, deletion, app.graphql_as(Some(&customer),
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }",
            json!({ "input": input }))).await;
        assert!(answer.body.get("errors").is_none(), "{}", answer.body);
        assert_eq!(answer.data()["placeOrder"]["userErrors"], json!([]));
        assert!(answer.data()["placeOrder"]["order"]["id"].is_string());
        assert_eq!(deliveries_of(&app, id).await, 0);
    }
}

db_test! {
    /// A first sign-in through a provider, while another account takes the same email: the
    /// new account is made without the email (as when it was taken before), not refused.
    async fn a_first_sign_in_racing_another_account_for_its_email_still_signs_in(app) {
        use entities::user;
        use sea_orm::{ActiveModelTrait, ActiveValue::Set};
        let other = app.db.begin().await.unwrap();
        user::ActiveModel {
            display_name: Set("Someone else".into()),
            email: Set(Some("shared@example.test".into())),
            roles: Set(json!(["customer"])),
            created_at: Set(chrono::Utc::now()),
            updated_at: Set(chrono::Utc::now()),
            ..Default::default()
        }
        .insert(&other)
        .await
        .unwrap();
        let profile = dishpatch::services::users::ExternalProfile {
            provider: "https://id.example.test".into(),
            subject: "race-1".into(),
            email: Some("Shared@example.test".into()),
            name: Some("Racer".into()),
        };
        let signed_in = racing(&app, other,
            dishpatch::services::users::find_or_create(&app.db, &profile, chrono::Utc::now())).await;
        let signed_in = signed_in.expect("the sign-in succeeds");
        assert_eq!(signed_in.email, None);
        assert_eq!(signed_in.display_name, "Racer");
        let holders = user::Entity::find()
            .filter(user::Column::Email.eq("shared@example.test"))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(holders, 1);
    }
}

db_test! {
    /// A restaurant created, or renamed, to a slug another takes at the same moment: the
    /// slug's `CONFLICT` user error, as when it was taken before.
    async fn a_slug_taken_meanwhile_is_a_conflict(app) {
        use entities::restaurant;
        use sea_orm::sea_query::Expr;
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let owner = user_node(&app, seed::DEMO_OWNER).await;
        let sakura = decode_id(&json!(app.restaurant_id("sakura-sushi").await));
        let db = &app.db;
        let take = |slug: &'static str| async move {
            let other = db.begin().await.unwrap();
            restaurant::Entity::update_many()
                .col_expr(restaurant::Column::Slug, Expr::value(slug))
                .filter(restaurant::Column::Id.eq(sakura))
                .exec(&other)
                .await
                .unwrap();
            other
        };
        let other = take("pho-corner").await;
        let created = racing(&app, other, app.graphql_as(Some(&admin),
            "mutation($input: CreateRestaurantInput!) { createRestaurant(input: $input) { restaurant { id } userErrors { field code } } }",
            json!({ "input": { "name": "Pho Corner", "slug": "pho-corner", "ownerId": owner, "address": "Kastanienallee 5, Berlin",
                               "location": { "latitude": 52.538, "longitude": 13.410 }, "timeZone": "Europe/Berlin" } }))).await;
        assert!(created.body.get("errors").is_none(), "{}", created.body);
        assert_eq!(created.data()["createRestaurant"]["userErrors"], json!([{ "field": ["input", "slug"], "code": "CONFLICT" }]));

        let owner_token = app.bearer(seed::DEMO_OWNER).await;
        let roma = app.restaurant_id("trattoria-roma").await;
        let other = take("roma-mitte").await;
        let renamed = racing(&app, other, app.graphql_as(Some(&owner_token),
            "mutation($input: UpdateRestaurantInput!) { updateRestaurant(input: $input) { restaurant { slug } userErrors { field code } } }",
            json!({ "input": { "id": roma, "slug": "roma-mitte" } }))).await;
        assert!(renamed.body.get("errors").is_none(), "{}", renamed.body);
        assert_eq!(renamed.data()["updateRestaurant"]["userErrors"][0]["code"], "CONFLICT");
    }
}
