//! The HTTP surface: GET queries, GraphiQL, health, request ids.

use serde_json::json;

use crate::helpers::{TestApp, db_test};

db_test! {
    async fn get_runs_queries_but_refuses_mutations(app) {
        let url = format!("{}/graphql", app.address);
        let query = app.client.get(&url).query(&[("query", "{ restaurants(first: 1) { totalCount } }")]).send().await.unwrap();
        let query = TestApp::read(query).await;
        assert_eq!(query.data()["restaurants"]["totalCount"], 20);

        let mutation = app.client.get(&url).query(&[("query", "mutation { doSomething }")]).send().await.unwrap();
        let allow = mutation.headers().get("allow").cloned();
        let mutation = TestApp::read(mutation).await;
        assert_eq!(mutation.status, 405);
        assert_eq!(mutation.error_code(), "METHOD_NOT_ALLOWED");
        assert_eq!(allow.unwrap(), "POST");

        let named = app.client.get(&url)
            .query(&[("query", "query Q { __typename } mutation M { x }"), ("operationName", "M")])
            .send().await.unwrap();
        assert_eq!(named.status(), 405);

        let put = app.client.put(&url).json(&json!({ "query": "{ __typename }" })).send().await.unwrap();
        assert_eq!(put.status(), 405);
    }
}

db_test! {
    async fn browsers_get_graphiql_and_the_root_redirects_to_it(app) {
        let page = app.client.get(format!("{}/graphql", app.address)).header("accept", "text/html").send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(page.text().await.unwrap().contains("graphiql"));
        let root = app.client.get(&app.address).send().await.unwrap();
        assert_eq!(root.status(), 307);
        assert_eq!(root.headers()["location"], "/graphql");
    }
}

db_test! {
    async fn health_and_readiness_report_the_database(app) {
        let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        app.db.clone().close().await.unwrap();
        let closed = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
        assert_eq!(closed.status(), 503);
    }
}

db_test! {
    async fn request_ids_are_echoed_or_generated(app) {
        let url = format!("{}/graphql", app.address);
        let given = app.client.post(&url).header("x-request-id", "trace-42").json(&json!({ "query": "{ __typename }" })).send().await.unwrap();
        assert_eq!(given.headers()["x-request-id"], "trace-42");
        let generated = app.client.post(&url).json(&json!({ "query": "{ __typename }" })).send().await.unwrap();
        let id = generated.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        let hostile = app.client.post(&url).header("x-request-id", "a b\tc").json(&json!({ "query": "{ __typename }" })).send().await.unwrap();
        assert_ne!(hostile.headers()["x-request-id"], "a b\tc");
    }
}

db_test! {
    async fn response_keys_follow_the_selection_set_every_time(app) {
        // Fields that wait on the database must not overtake the ones that answer at once.
        let query = "{ restaurants(first: 5) { edges { node { menu { items { name } } reviews(first: 2) { totalCount } name cuisines } } totalCount } }";
        for _ in 0..20 {
            let response = app.client.post(format!("{}/graphql", app.address))
                .json(&json!({ "query": query })).send().await.unwrap();
            let body = response.text().await.unwrap();
            assert!(body.starts_with(r#"{"data":{"restaurants":{"edges":[{"node":{"menu":{"items":"#), "{body}");
            let node = &body[..body.find("}},{\"node\"").expect("a second restaurant")];
            let at = |key: &str| node.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("{key} in {node}"));
            // The restaurant's own `name` is the last one; the first ones are its menu items'.
            let name = node.rfind("\"name\":").unwrap();
            assert!(at("menu") < at("reviews") && at("reviews") < name && name < at("cuisines"), "{node}");
            assert!(body.find("\"totalCount\":20").unwrap() > body.rfind("\"cuisines\"").unwrap(), "{body}");
        }
    }
}
