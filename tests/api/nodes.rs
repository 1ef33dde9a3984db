//! Relay `node(id)` and `nodes(ids)`.

use serde_json::{Value, json};

use crate::helpers::db_test;

db_test! {
    async fn every_node_type_round_trips_through_node(app) {
        let response = app.graphql(
            "{ restaurants(first: 1) { edges { node { id name
                menu { categories { id name items { id name } } }
                reviews(first: 1) { edges { node { id body author { id displayName } } } } } } } }",
            json!({}),
        ).await;
        let restaurant = response.data()["restaurants"]["edges"][0]["node"].clone();
        let category = &restaurant["menu"]["categories"][0];
        let item = &category["items"][0];
        let review = &restaurant["reviews"]["edges"][0]["node"];
        let author = &review["author"];
        let query = "query($id: ID!) { node(id: $id) { __typename id
            ... on Restaurant { name } ... on MenuCategory { name } ... on MenuItem { name }
            ... on Review { body } ... on User { displayName } } }";
        for (value, typename, field) in [
            (&restaurant, "Restaurant", "name"),
            (category, "MenuCategory", "name"),
            (item, "MenuItem", "name"),
            (review, "Review", "body"),
            (author, "User", "displayName"),
        ] {
            let node = app.graphql(query, json!({ "id": value["id"] })).await;
            let node = &node.data()["node"];
            assert_eq!(node["__typename"], typename);
            assert_eq!(node["id"], value["id"]);
            assert_eq!(node[field], value[field]);
        }
    }
}

db_test! {
    async fn nodes_keeps_order_and_answers_null_for_missing_ones(app) {
        let roma = app.restaurant_id("trattoria-roma").await;
        let sakura = app.restaurant_id("sakura-sushi").await;
        // A well-formed ID of a restaurant that does not exist.
        let missing = "UmVzdGF1cmFudDo5OTk5OTk";
        let response = app.graphql(
            "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Restaurant { slug } } }",
            json!({ "ids": [sakura, missing, roma] }),
        ).await;
        let nodes = response.data()["nodes"].as_array().unwrap().clone();
        assert_eq!(nodes[0]["slug"], "sakura-sushi");
        assert_eq!(nodes[1], Value::Null);
        assert_eq!(nodes[2]["slug"], "trattoria-roma");

        let too_many: Vec<&str> = std::iter::repeat_n(roma.as_str(), 101).collect();
        let refused = app.graphql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({ "ids": too_many })).await;
        assert_eq!(refused.error_code(), "BAD_USER_INPUT");
    }
}
