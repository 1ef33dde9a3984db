//! Restaurant lists read each restaurant's card (the columns a list shows), or only its brief
//! (id, name, rating) when that is all the query asks, or whole rows when it asks for more,
//! and answer exactly as when they read whole rows.

use chrono::{Duration, Utc};
use entities::restaurant;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::helpers::{TestApp, db_test};

/// The fields a restaurant's card answers (`openNow` is left out of the comparisons: the two
/// walks run seconds apart, and a restaurant may open or close in between).
const CARD: &str = "id slug name rating { average count } deliveryFee { amount currency }
    acceptsOrders pausedUntil timeZone utcOffsetMinutes cuisines";

/// Fields a list answers from the brief (and loaders by id).
const BRIEF: &str = "__typename id name rating { average count } cuisines";

/// The fields beyond the card, as a fragment (the list must see through it).
const BEYOND: &str = "fragment Beyond on Restaurant {
    description address location { latitude longitude } phone deliveryRadiusMeters
    minimumOrder { amount currency } preparationMinutes distanceKm(from: { latitude: 45.0, longitude: 9.0 })
}";

/// Every page of `restaurants(orderBy: $order)`, `first: 7` at a time, with `fields` on each
/// node: the pages' nodes and cursors, the total counts, and the statements of each page.
async fn walk(
    app: &TestApp,
    order: &Value,
    fields: &str,
    fragments: &str,
) -> (Vec<Value>, Vec<i64>, Vec<u32>) {
    let query = format!(
        "query($after: String, $order: RestaurantOrder) {{
            restaurants(first: 7, after: $after, orderBy: $order,
                        filter: {{ near: {{ latitude: 45.4, longitude: 9.2 }} }}) {{
                totalCount
                edges {{ cursor node {{ {fields} }} }}
                pageInfo {{ hasNextPage endCursor }}
            }}
        }} {fragments}"
    );
    let (mut edges, mut counts, mut statements) = (Vec::new(), Vec::new(), Vec::new());
    let mut after = Value::Null;
    loop {
        let response = app
            .graphql(&query, json!({ "after": after, "order": order }))
            .await;
        let page = response.data()["restaurants"].clone();
        edges.extend(page["edges"].as_array().expect("edges").iter().cloned());
        counts.push(page["totalCount"].as_i64().expect("a count"));
        statements.push(response.sql_statements());
        if page["pageInfo"]["hasNextPage"] != json!(true) {
            return (edges, counts, statements);
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

db_test! {
    /// By name, by rating and by distance, both ways: the same restaurants, the same cursors
    /// and counts whether a page reads briefs, cards or whole rows, in the same statements (the list,
    /// its count and the cuisines), and the fields beyond the card as the restaurant itself
    /// answers them.
    scale = 3,
    async fn a_list_of_cards_answers_as_a_list_of_whole_rows(app) {
        // Values the demo data leaves empty, so that the comparison sees them.
        restaurant::Entity::update_many()
            .col_expr(restaurant::Column::Phone, Expr::value("+39 06 555 0101"))
            .col_expr(restaurant::Column::PausedUntil, Expr::value(Utc::now() + Duration::hours(2)))
            .filter(restaurant::Column::Id.eq(2))
            .exec(&app.db)
            .await
            .expect("a paused restaurant with a phone");
        let restaurants = restaurant::Entity::find().all(&app.db).await.expect("restaurants").len();

        for field in ["NAME", "RATING", "DISTANCE"] {
            for direction in ["ASC", "DESC"] {
                let order = json!({ "field": field, "direction": direction });
                let (cards, card_counts, card_statements) = walk(&app, &order, CARD, "").await;
                let (briefs, brief_counts, brief_statements) = walk(&app, &order, BRIEF, "").await;
                let (wholes, whole_counts, whole_statements) =
                    walk(&app, &order, &format!("{CARD} ...Beyond"), BEYOND).await;
                assert_eq!(cards.len(), restaurants, "{order}: every restaurant, once");
                assert_eq!(card_counts, whole_counts, "{order}");
                assert!(card_counts.iter().all(|&c| usize::try_from(c).unwrap() == restaurants), "{order}");
                // The list, its count and the cuisines: no statement more for the fields
                // beyond the card.
                assert!(card_statements.iter().all(|&s| s == 3), "{order}: {card_statements:?}");
                assert_eq!(card_statements, whole_statements, "{order}");
                assert_eq!(brief_statements, whole_statements, "{order}: the brief");
                assert_eq!(brief_counts, whole_counts, "{order}: the brief");
                assert_eq!(briefs.len(), wholes.len(), "{order}: the brief");
                for (brief, whole) in briefs.iter().zip(&wholes) {
                    assert_eq!(brief["cursor"], whole["cursor"], "{order}: the brief");
                    for (key, value) in brief["node"].as_object().expect("a node") {
                        if key != "__typename" {
                            assert_eq!(&whole["node"][key], value, "{order}: the brief's {key}");
                        }
                    }
                    assert_eq!(brief["node"]["__typename"], "Restaurant");
                }
                for (card, whole) in cards.iter().zip(&wholes) {
                    assert_eq!(card["cursor"], whole["cursor"], "{order}");
                    for (key, value) in card["node"].as_object().expect("a node") {
                        assert_eq!(&whole["node"][key], value, "{order}: {key}");
                    }
                }
                if field == "NAME" && direction == "ASC" {
                    for whole in &wholes {
                        let one = app
                            .graphql(
                                &format!("query($id: ID!) {{ restaurant(id: $id) {{ {CARD} ...Beyond }} }} {BEYOND}"),
                                json!({ "id": whole["node"]["id"] }),
                            )
                            .await;
                        assert_eq!(one.data()["restaurant"], whole["node"], "the restaurant as the list shows it");
                    }
                }
            }
        }
        let paused = cards_of(&app).await;
        assert!(paused.iter().any(|n| n["pausedUntil"].is_string() && n["openNow"] == json!(false)), "{paused:?}");
    }
}

db_test! {
    /// Fields beyond the card asked directly, through inline fragments, under `nodes` or
    /// under a directive: the list reads whole rows in the same statement.
    async fn a_list_sees_fields_beyond_the_card_however_they_are_asked(app) {
        for (query, path) in [
            ("{ restaurants(first: 3) { edges { node { name phone } } } }", "edges"),
            ("{ restaurants(first: 3) { edges { ... on RestaurantEdge { node { ... on Restaurant { name phone } } } } } }", "edges"),
            ("{ restaurants(first: 3) { nodes { name phone } } }", "nodes"),
            ("query($p: Boolean = true) { restaurants(first: 3) { edges { n: node { name phone @include(if: $p) } } } }", "edges"),
        ] {
            let response = app.graphql(query, json!({})).await;
            let list = response.data()["restaurants"][path].as_array().expect("a list").len();
            assert_eq!(list, 3, "{query}");
            assert_eq!(response.sql_statements(), 1, "{query}: the list alone");
        }
        let phone = app
            .graphql("{ restaurant(slug: \"trattoria-roma\") { phone address } }", json!({}))
            .await;
        assert!(phone.data()["restaurant"]["address"].is_string());
    }
}

/// The first page's nodes, cards only.
async fn cards_of(app: &TestApp) -> Vec<Value> {
    let response = app
        .graphql(
            "{ restaurants(first: 100) { nodes { name pausedUntil openNow } } }",
            json!({}),
        )
        .await;
    response.data()["restaurants"]["nodes"]
        .as_array()
        .expect("nodes")
        .clone()
}
