//! Bad input gets a clear error with `extensions.code`, never a 500 or a panic.

use serde_json::json;

use crate::helpers::{TestApp, db_test};

async fn expect_code(
    app: &TestApp,
    query: &str,
    variables: serde_json::Value,
    code: &str,
) -> String {
    let response = app.graphql(query, variables).await;
    assert!(response.status < 500, "{response:?}");
    assert_eq!(response.error_code(), code, "{:#}", response.body);
    response.error_message().to_owned()
}

db_test! {
    async fn malformed_requests_are_refused_with_bad_request(app) {
        let url = format!("{}/graphql", app.address);
        let malformed = app.client.post(&url).header("content-type", "application/json").body("{\"query\": ").send().await.unwrap();
        let malformed = TestApp::read(malformed).await;
        assert_eq!(malformed.status, 400);
        assert_eq!(malformed.error_code(), "BAD_REQUEST");

        let no_query = app.post_json(&json!({ "variables": {} })).await;
        assert_eq!(no_query.status, 400);
        assert_eq!(no_query.error_code(), "BAD_REQUEST");

        let text = app.client.post(&url).header("content-type", "text/plain").body("{ restaurants { totalCount } }").send().await.unwrap();
        let text = TestApp::read(text).await;
        assert_eq!(text.status, 415);
        assert_eq!(text.error_code(), "BAD_REQUEST");

        let huge = app.client.post(&url).header("content-type", "application/json")
            .body(format!("{{\"query\": \"{}\"}}", "a".repeat(2 << 20))).send().await.unwrap();
        let huge = TestApp::read(huge).await;
        assert_eq!(huge.status, 413);

        let batch: Vec<_> = (0..11).map(|_| json!({ "query": "{ __typename }" })).collect();
        let flood = app.post_json(&json!(batch)).await;
        assert_eq!(flood.status, 400);
        assert!(flood.error_message().contains("at most 10"));
        let ok_batch = app.post_json(&json!([{ "query": "{ __typename }" }, { "query": "{ restaurants(first: 1) { totalCount } }" }])).await;
        assert_eq!(ok_batch.body[1]["data"]["restaurants"]["totalCount"], 20);
    }
}

db_test! {
    async fn invalid_documents_are_refused_with_graphql_codes(app) {
        expect_code(&app, "{ restaurants { nope } }", json!({}), "GRAPHQL_VALIDATION_FAILED").await;
        expect_code(&app, "{ restaurants { ", json!({}), "GRAPHQL_PARSE_FAILED").await;
        expect_code(&app, "query($n: Int!) { restaurants(first: $n) { totalCount } }", json!({ "n": "ten" }), "GRAPHQL_VALIDATION_FAILED").await;
        let deep = format!("{{ restaurants {{ edges {{ node {{ menu {{ items {{ restaurant {}{}{} }} }} }} }} }} }}",
            "{ menu { items { restaurant ".repeat(4), "{ name }", " } } }".repeat(4));
        let too_deep = expect_code(&app, &deep, json!({}), "QUERY_TOO_COMPLEX").await;
        assert!(too_deep.contains("limit of 16"), "{too_deep}");
    }
}

db_test! {
    async fn page_sizes_outside_0_to_100_are_refused(app) {
        let query = "query($first: Int, $last: Int) { restaurants(first: $first, last: $last) { totalCount } }";
        let over = expect_code(&app, query, json!({ "first": 101 }), "BAD_USER_INPUT").await;
        assert!(over.contains("100"), "{over}");
        expect_code(&app, query, json!({ "first": -1 }), "BAD_USER_INPUT").await;
        expect_code(&app, query, json!({ "last": 1000 }), "BAD_USER_INPUT").await;
        expect_code(&app, query, json!({ "first": 1, "last": 1 }), "BAD_USER_INPUT").await;
        let id = app.restaurant_id("trattoria-roma").await;
        expect_code(&app, "query($id: ID!) { restaurant(id: $id) { reviews(first: 500) { totalCount } } }", json!({ "id": id }), "BAD_USER_INPUT").await;
        let zero = app.graphql(query, json!({ "first": 0 })).await;
        assert_eq!(zero.data()["restaurants"]["totalCount"], 20);
    }
}

db_test! {
    async fn malformed_and_foreign_ids_and_cursors_are_user_errors(app) {
        let query = "query($id: ID, $slug: String) { restaurant(id: $id, slug: $slug) { name } }";
        expect_code(&app, query, json!({ "id": "not-an-id" }), "BAD_USER_INPUT").await;
        let user_id = app.graphql("{ restaurants(first: 1) { edges { node { reviews(first: 1) { edges { node { author { id } } } } } } } }", json!({})).await;
        let user_id = user_id.data()["restaurants"]["edges"][0]["node"]["reviews"]["edges"][0]["node"]["author"]["id"].clone();
        let foreign = expect_code(&app, query, json!({ "id": user_id }), "BAD_USER_INPUT").await;
        assert!(foreign.contains("Restaurant"), "{foreign}");
        expect_code(&app, query, json!({}), "BAD_USER_INPUT").await;
        expect_code(&app, query, json!({ "id": user_id, "slug": "x" }), "BAD_USER_INPUT").await;
        expect_code(&app, "{ node(id: \"UmVzdGF1cmFudDpub3Bl\") { id } }", json!({}), "BAD_USER_INPUT").await;

        let page = "query($after: String, $orderBy: RestaurantOrder) { restaurants(first: 2, after: $after, orderBy: $orderBy) { pageInfo { endCursor } } }";
        let response = app.graphql(page, json!({})).await;
        let cursor = response.data()["restaurants"]["pageInfo"]["endCursor"].clone();
        let other = expect_code(&app, page, json!({ "after": cursor, "orderBy": { "field": "RATING" } }), "BAD_USER_INPUT").await;
        assert!(other.contains("ordering"), "{other}");
        expect_code(&app, page, json!({ "after": "garbage!" }), "BAD_USER_INPUT").await;
        expect_code(&app, "{ restaurants(orderBy: { field: DISTANCE }) { totalCount } }", json!({}), "BAD_USER_INPUT").await;
        expect_code(&app, "{ restaurants(filter: { withinKm: 3 }) { totalCount } }", json!({}), "BAD_USER_INPUT").await;
        expect_code(&app, "{ restaurants(filter: { near: { latitude: 91, longitude: 0 } }) { totalCount } }", json!({}), "BAD_USER_INPUT").await;
        let long = "x".repeat(101);
        expect_code(&app, "query($s: String) { restaurants(filter: { search: $s }) { totalCount } }", json!({ "s": long }), "BAD_USER_INPUT").await;
    }
}
