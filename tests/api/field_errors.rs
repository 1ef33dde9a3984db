//! Field errors as the GraphQL spec says (§6.4.4 "Handling Field Errors"): a nullable field
//! whose resolver fails is `null`, its key kept in its place and its error (with its path) in
//! `errors`; a non-null field's error makes its nearest nullable parent `null`, up to `data`.
//! The expected responses below are written from the spec, not from what the server answers.

use dishpatch::seed;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, db_test},
    orders::{available, order_input, roma_items},
};

/// A response as the client reads it: the body's text (for key order) and its JSON.
async fn post(app: &TestApp, who: Option<&str>, query: &str, variables: Value) -> (String, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(who) = who {
        request = request.header("authorization", who);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap();
    (text, body)
}

/// Asserts `body` has exactly `data` and errors with these (code, path) pairs, in any order.
fn assert_response(body: &Value, data: &Value, errors: &[(&str, Value)], case: &str) {
    assert_eq!(&body["data"], data, "{case}: data in {body:#}");
    let mut got: Vec<(String, Value)> = body["errors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|error| {
            (
                error["extensions"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                error["path"].clone(),
            )
        })
        .collect();
    let mut expected: Vec<(String, Value)> = errors
        .iter()
        .map(|(code, path)| ((*code).to_owned(), path.clone()))
        .collect();
    got.sort_by_key(|(code, path)| format!("{code}{path}"));
    expected.sort_by_key(|(code, path)| format!("{code}{path}"));
    assert_eq!(got, expected, "{case}: errors in {body:#}");
    if errors.is_empty() {
        assert!(body.get("errors").is_none(), "{case}: {body:#}");
    }
}

const REVIEW_AUTHOR: &str = "{ restaurant(slug: \"trattoria-roma\") { reviews(first: 1) { edges { node { author { SELECTION } } } } } }";

fn author_path(field: &str) -> Value {
    json!(["restaurant", "reviews", "edges", 0, "node", "author", field])
}

db_test! {
    async fn a_failed_nullable_field_is_null_in_its_place(app) {
        let (_, first) = post(&app, None, &REVIEW_AUTHOR.replace("SELECTION", "displayName"), json!({})).await;
        let name = first["data"]["restaurant"]["reviews"]["edges"][0]["node"]["author"]["displayName"].clone();
        assert!(name.is_string(), "the demo data has a review: {first:#}");
        let author = |value: Value| json!({ "restaurant": { "reviews": { "edges": [{ "node": { "author": value } }] } } });

        let (_, body) = post(&app, None, &REVIEW_AUTHOR.replace("SELECTION", "displayName email"), json!({})).await;
        assert_response(&body, &author(json!({ "displayName": name, "email": null })),
            &[("UNAUTHENTICATED", author_path("email"))], "nullable field after a good one");

        let (_, body) = post(&app, None, &REVIEW_AUTHOR.replace("SELECTION", "email"), json!({})).await;
        assert_response(&body, &author(json!({ "email": null })),
            &[("UNAUTHENTICATED", author_path("email"))], "the only field fails");

        let (text, body) = post(&app, None, &REVIEW_AUTHOR.replace("SELECTION", "mail: email name: displayName again: email"), json!({})).await;
        assert_response(&body, &author(json!({ "mail": null, "name": name, "again": null })),
            &[("UNAUTHENTICATED", author_path("mail")), ("UNAUTHENTICATED", author_path("again"))], "aliases");
        let order = ["\"mail\"", "\"name\"", "\"again\""].map(|key| text.find(key).expect(key));
        assert!(order[0] < order[1] && order[1] < order[2], "keys in selection order: {text}");

        let (_, body) = post(&app, None, "{ restaurant(slug: \"trattoria-roma\") { name @skip(if: true) } }", json!({})).await;
        assert_response(&body, &json!({ "restaurant": {} }), &[], "an emptied selection is an empty object");
    }
}

db_test! {
    async fn fragments_and_interfaces_keep_the_failed_fields_key(app) {
        let casey = app.user_id(seed::DEMO_CUSTOMER).await;
        let id = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, casey);
        let courier = app.bearer(seed::DEMO_COURIER).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        for (who, code) in [(None, "UNAUTHENTICATED"), (Some(courier.as_str()), "FORBIDDEN")] {
            let (_, body) = post(&app, who, "query($id: ID!) { node(id: $id) { ... on User { email displayName } } }", json!({ "id": id })).await;
            assert_response(&body, &json!({ "node": { "email": null, "displayName": "Casey Customer" } }),
                &[(code, json!(["node", "email"]))], "inline fragment");
            let (_, body) = post(&app, who, "query($id: ID!) { node(id: $id) { ...F } } fragment F on User { displayName email }", json!({ "id": id })).await;
            assert_response(&body, &json!({ "node": { "displayName": "Casey Customer", "email": null } }),
                &[(code, json!(["node", "email"]))], "named fragment");
        }
        let (_, body) = post(&app, Some(&customer), "query($id: ID!) { node(id: $id) { ... on User { email displayName } } }", json!({ "id": id })).await;
        assert_response(&body, &json!({ "node": { "email": seed::DEMO_CUSTOMER, "displayName": "Casey Customer" } }), &[], "the owner sees it");
    }
}

db_test! {
    async fn a_failed_non_null_field_nulls_the_nearest_nullable_parent(app) {
        let casey = app.user_id(seed::DEMO_CUSTOMER).await;
        let user = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, casey);
        let roma = app.restaurant_id("trattoria-roma").await;

        // One level: `roles: [Role!]!` fails, so the nullable `node` is null.
        let (_, body) = post(&app, None, "query($id: ID!) { node(id: $id) { ... on User { displayName roles } } }", json!({ "id": user })).await;
        assert_response(&body, &json!({ "node": null }), &[("UNAUTHENTICATED", json!(["node", "roles"]))], "one level");

        // Several levels and through a list: User!, Review!, [ReviewEdge!]!, ReviewConnection!
        // are all non-null, so the nullable `restaurant` is null; the path is the whole way.
        let (_, body) = post(&app, None, &REVIEW_AUTHOR.replace("SELECTION", "displayName roles"), json!({})).await;
        assert_response(&body, &json!({ "restaurant": null }), &[("UNAUTHENTICATED", author_path("roles"))], "several levels");

        // Nullable list items: only the failing item is null.
        let (_, body) = post(&app, None, "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on User { roles } } }", json!({ "ids": [user, roma] })).await;
        assert_response(&body, &json!({ "nodes": [null, { "id": roma }] }), &[("UNAUTHENTICATED", json!(["nodes", 0, "roles"]))], "list items");

        // A non-null root field: `data` itself is null.
        let (_, body) = post(&app, None, "{ restaurant(slug: \"trattoria-roma\") { name } availableDeliveries { totalCount } }", json!({})).await;
        assert_response(&body, &Value::Null, &[("UNAUTHENTICATED", json!(["availableDeliveries"]))], "root");
        assert!(body.as_object().unwrap().contains_key("data"), "`data` is present, and null");

        // With @include, the failing field only counts when included.
        let query = "query($with: Boolean!, $id: ID!) { node(id: $id) { ... on User { displayName roles @include(if: $with) } } }";
        let (_, body) = post(&app, None, query, json!({ "with": false, "id": user })).await;
        assert_response(&body, &json!({ "node": { "displayName": "Casey Customer" } }), &[], "@include(if: false)");
        let (_, body) = post(&app, None, query, json!({ "with": true, "id": user })).await;
        assert_response(&body, &json!({ "node": null }), &[("UNAUTHENTICATED", json!(["node", "roles"]))], "@include(if: true)");
    }
}

db_test! {
    async fn a_refused_mutation_next_to_another_follows_the_spec(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let casey = app.user_id(seed::DEMO_CUSTOMER).await;
        let user = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, casey);
        let (restaurant, items) = roma_items(&app).await;
        let place_then_grant = "mutation($p: PlaceOrderInput!, $u: ID!) {
            placeOrder(input: $p) { order { id } userErrors { code } }
            grantRole(input: { userId: $u, role: ADMIN }) { user { id } } }";
        let input = order_input(&restaurant, &available(&items, 1), "spec-serial-1");
        let (_, body) = post(&app, Some(&customer), place_then_grant, json!({ "p": input, "u": user })).await;
        // `grantRole` is `RolePayload!`: its error nulls `data`; the first mutation ran.
        assert_response(&body, &Value::Null, &[("FORBIDDEN", json!(["grantRole"]))], "second refused");
        let stored = entities::order::Entity::find()
            .filter(entities::order::Column::IdempotencyKey.eq("spec-serial-1"))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(stored, 1, "the first mutation's order is stored");

        let (_, body) = post(&app, None, "mutation { revokeApiToken(input: { id: \"QXBpVG9rZW46MQ\" }) { apiToken { id } } }", json!({})).await;
        assert_response(&body, &Value::Null, &[("UNAUTHENTICATED", json!(["revokeApiToken"]))], "anonymous");
    }
}
