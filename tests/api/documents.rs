//! Documents kept parsed and validated (`graphql::documents`): a repeated operation answers as
//! the first did, and what the cache keeps never lets a request skip a check it would fail.

use dishpatch::seed;
use serde_json::json;

use crate::helpers::{TestApp, db_test};

db_test! {
    /// The same operation again: the same answer and the same cost, with other variables
    /// validated for themselves (a page size that is too large is refused after a small one
    /// passed, and the small one still passes after the refusal).
    async fn a_repeated_operation_answers_and_costs_as_the_first(app) {
        let query = "query($outer: Int!, $inner: Int!) { restaurants(first: $outer) { edges { node { name reviews(first: $inner) { edges { node { rating } } } } } } }";
        let small = json!({ "outer": 10, "inner": 10 });
        let first = app.graphql(query, small.clone()).await;
        first.data();
        for _ in 0..3 {
            let again = app.graphql(query, small.clone()).await;
            assert_eq!(again.body["data"], first.body["data"]);
            assert_eq!(
                again.body["extensions"]["cost"]["requested"],
                first.body["extensions"]["cost"]["requested"]
            );
        }
        let large = app.graphql(query, json!({ "outer": 100, "inner": 100 })).await;
        assert_eq!(large.error_code(), "QUERY_TOO_COMPLEX", "{}", large.body);
        assert!(large.body["data"].is_null());
        let after = app.graphql(query, small).await;
        assert_eq!(after.body["data"], first.body["data"]);

        // A document that fails validation is refused every time, not only the first.
        for _ in 0..2 {
            let wrong = app.graphql("{ restaurants(first: 1) { nope } }", json!({})).await;
            assert_eq!(wrong.error_code(), "GRAPHQL_VALIDATION_FAILED", "{}", wrong.body);
        }
        // Variables of the wrong type for a document seen before are still refused.
        let typed = app.graphql(query, json!({ "outer": "ten", "inner": 1 })).await;
        assert!(typed.body["errors"].is_array(), "{}", typed.body);
        assert!(typed.body["data"].is_null(), "{}", typed.body);
    }
}

db_test! {
    /// The HTTP layer asks the cache whether an operation is a mutation: a mutation sent by
    /// POST first is still refused over GET, and the operation name picks the operation.
    async fn a_kept_mutation_is_still_refused_over_get(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let document = "query Q { __typename } mutation M { cancelOrder(input: { orderId: \"T3JkZXI6MQ\" }) { userErrors { message } } }";
        let url = format!("{}/graphql", app.address);
        for _ in 0..2 {
            let query = app
                .client
                .post(&url)
                .header("authorization", &customer)
                .json(&json!({ "query": document, "operationName": "Q" }))
                .send()
                .await
                .unwrap();
            let query = TestApp::read(query).await;
            assert_eq!(query.data()["__typename"], "Query");
            // Over GET, the query runs and the mutation is refused, after both were seen.
            let get = |name: &'static str| {
                app.client
                    .get(&url)
                    .header("authorization", &customer)
                    .query(&[("query", document), ("operationName", name)])
                    .send()
            };
            assert_eq!(get("Q").await.unwrap().status(), 200);
            let refused = TestApp::read(get("M").await.unwrap()).await;
            assert_eq!(refused.status, 405, "{}", refused.body);
            assert_eq!(refused.error_code(), "METHOD_NOT_ALLOWED");
        }
    }
}
