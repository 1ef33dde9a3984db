//! Admins find people: `users(filter)`, emails compared case-insensitively.

use dishpatch::{
    seed,
    services::users::{ExternalProfile, find_or_create},
};
use serde_json::{Value, json};

use crate::helpers::{db_test, node_ids};

const USERS: &str =
    "query($filter: UserFilter, $first: Int, $after: String, $last: Int, $before: String) {
    users(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
        totalCount pageInfo { hasNextPage hasPreviousPage endCursor startCursor }
        edges { cursor node { id displayName email roles } } } }";

db_test! {
    /// An admin finds a user by email in any case and lists users by role, page by page in
    /// both directions; nobody else can list users.
    async fn admins_find_users_by_email_and_role(app) {
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        // Someone signs in with a mixed-case address: stored, and found, in lower case.
        let person = find_or_create(&app.db, &ExternalProfile {
            provider: "test".into(),
            subject: "mixed-case".into(),
            email: Some("  Robin.Rider@Example.COM ".into()),
            name: Some("Robin".into()),
        }, chrono::Utc::now()).await.unwrap();
        assert_eq!(person.email.as_deref(), Some("robin.rider@example.com"));
        for asked in ["robin.rider@example.com", "ROBIN.RIDER@example.com", " Robin.Rider@Example.Com"] {
            let found = app.graphql_as(Some(&admin), USERS, json!({ "filter": { "email": asked } })).await;
            let found = &found.data()["users"];
            assert_eq!(found["totalCount"], 1, "{asked}");
            assert_eq!(found["edges"][0]["node"]["displayName"], "Robin");
        }
        // The same address in another case signs in as another identity: it does not get
        // (or take over) the address.
        let twin = find_or_create(&app.db, &ExternalProfile {
            provider: "other".into(),
            subject: "twin".into(),
            email: Some("ROBIN.RIDER@EXAMPLE.COM".into()),
            name: None,
        }, chrono::Utc::now()).await.unwrap();
        assert_eq!(twin.email, None);

        // By role: every courier, in pages of 3 forwards and backwards.
        let all = app.graphql_as(Some(&admin), USERS, json!({ "filter": { "role": "COURIER" }, "first": 100 })).await;
        let all = all.data()["users"].clone();
        let ids = node_ids(&all);
        assert_eq!(all["totalCount"], json!(ids.len()));
        assert!(ids.len() > 3);
        assert!(all["edges"].as_array().unwrap().iter().all(|e| e["node"]["roles"].as_array().unwrap().contains(&json!("COURIER"))));
        let (mut forward, mut after) = (Vec::new(), Value::Null);
        loop {
            let page = app.graphql_as(Some(&admin), USERS, json!({ "filter": { "role": "COURIER" }, "first": 3, "after": after })).await;
            let page = page.data()["users"].clone();
            forward.extend(node_ids(&page));
            if page["pageInfo"]["hasNextPage"] != true { break; }
            after = page["pageInfo"]["endCursor"].clone();
        }
        assert_eq!(forward, ids);
        let (mut backward, mut before) = (Vec::new(), Value::Null);
        loop {
            let page = app.graphql_as(Some(&admin), USERS, json!({ "filter": { "role": "COURIER" }, "last": 3, "before": before })).await;
            let page = page.data()["users"].clone();
            let mut chunk = node_ids(&page);
            chunk.extend(backward);
            backward = chunk;
            if page["pageInfo"]["hasPreviousPage"] != true { break; }
            before = page["pageInfo"]["startCursor"].clone();
        }
        assert_eq!(backward, ids);
        let admins = app.graphql_as(Some(&admin), USERS, json!({ "filter": { "role": "ADMIN" } })).await;
        assert_eq!(admins.data()["users"]["edges"][0]["node"]["email"], seed::DEMO_ADMIN);

        // Nobody else: not customers, couriers or owners, not anonymous, not an admin's token.
        for who in [seed::DEMO_CUSTOMER, seed::DEMO_COURIER, seed::DEMO_OWNER] {
            let refused = app.graphql_as(Some(&app.bearer(who).await), USERS, json!({})).await;
            assert_eq!(refused.error_code(), "FORBIDDEN", "{who}");
            assert_eq!(refused.body["data"], Value::Null);
        }
        assert_eq!(app.graphql(USERS, json!({})).await.error_code(), "UNAUTHENTICATED");
        let token = app.graphql_as(Some(&admin), "mutation { createApiToken(input: { name: \"t\", scopes: [ORDERS_READ] }) { secret } }", json!({})).await;
        let token = format!("Bearer {}", token.data()["createApiToken"]["secret"].as_str().unwrap());
        assert_eq!(app.graphql_as(Some(&token), USERS, json!({})).await.error_code(), "FORBIDDEN");
    }
}
