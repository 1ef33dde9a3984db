//! The number of SQL statements grows with the depth of a query, never with its rows.

use serde_json::json;

use crate::helpers::{Backend, TestApp, db_test};

const NESTED: &str = "query Nested($n: Int!) {
  restaurants(first: $n) {
    edges { node {
      name
      menu { items { name price { amount } } }
      reviews(first: 3) { edges { node { rating author { displayName } } } }
    } }
  }
}";

db_test! {
    /// Restaurants -> menu items, and reviews -> authors: three relation levels.
    scale = 3,
    async fn nested_query_runs_the_same_statements_for_5_and_50_restaurants(app) {
        let mut counts = Vec::new();
        for n in [5, 50] {
            let response = app.graphql(NESTED, json!({ "n": n })).await;
            let edges = response.data()["restaurants"]["edges"].as_array().expect("edges").clone();
            assert_eq!(edges.len(), n);
            for edge in &edges {
                let node = &edge["node"];
                assert!(!node["menu"]["items"].as_array().expect("items").is_empty());
                let reviews = node["reviews"]["edges"].as_array().expect("reviews");
                assert!(reviews.len() <= 3);
                for review in reviews {
                    assert!(review["node"]["author"]["displayName"].is_string());
                }
            }
            assert!(
                edges.iter().any(|e| !e["node"]["reviews"]["edges"].as_array().unwrap().is_empty()),
                "the demo data has reviews"
            );
            counts.push(response.sql_statements());
        }
        assert_eq!(counts[0], counts[1], "statements for 5 and for 50 restaurants");
        assert!(counts[0] <= 3 + 2, "{} statements for three relation levels", counts[0]);
    }
}

db_test! {
    async fn every_relation_of_a_restaurant_page_is_batched(app) {
        let query = "query($n: Int!) { restaurants(first: $n) { totalCount edges { node {
            cuisines openNow openingHours { day } rating { average }
            menu { categories { name items { name category { name } restaurant { name } } } }
            reviews(first: 2) { totalCount edges { node { author { displayName } restaurant { slug } } } }
        } } } }";
        // Twelve relation paths (the list, its count, cuisines, hours, the dated closures
        // `openNow` checks, categories, items, an item's category and restaurant, reviews,
        // their authors and restaurants): one statement each at most, however many
        // restaurants. Two paths that share a loader may
        // share a statement when they resolve together, so the count can be lower, not higher.
        for n in [2, 20] {
            let response = app.graphql(query, json!({ "n": n })).await;
            response.data();
            assert!(response.sql_statements() <= 12, "{} statements for {n} restaurants", response.sql_statements());
        }
    }
}

db_test! {
    /// The README's example states what it costs; this holds the README to it.
    scale = 3,
    async fn the_readme_example_costs_the_statements_the_readme_states(app) {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("the README");
        let start = readme.find("query Nested {").expect("the README's example query");
        let end = start + readme[start..].find("\n```").expect("the end of the example");
        let example = &readme[start..end];
        let stated: u32 = readme
            .split("costs the same for 5 and for 50 restaurants (")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("the README states the example's statements");
        let mut counts = Vec::new();
        for n in [5, 50] {
            let query = example.replace("first: 10,", &format!("first: {n},"));
            assert_ne!(query, example, "the example pages with `first: 10,`");
            let response = app.graphql(&query, json!({})).await;
            let edges = response.data()["restaurants"]["edges"].as_array().expect("edges");
            assert!(edges.len() > 1, "open restaurants in the demo data");
            counts.push(response.sql_statements());
        }
        assert_eq!(counts, [stated, stated], "statements for 5 and 50 restaurants");
    }
}

/// An unfiltered `totalCount` of restaurants is SQLite's count of the table from its b-tree
/// (the `Count` instruction), not a step through every row (`AggStep`), which a `WHERE TRUE`
/// had made it; a filtered count still counts what matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfiltered_restaurant_count_is_read_from_the_tables_btree() {
    use dishpatch::services::restaurants::{RestaurantFilter, count_statement};
    use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, Statement};

    let app = TestApp::spawn(Backend::Sqlite, 1)
        .await
        .expect("SQLite is always available");
    let unfiltered = RestaurantFilter::default();
    let count = count_statement(&unfiltered, chrono::Utc::now(), DbBackend::Sqlite);
    let explain = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        format!("EXPLAIN {}", count.sql),
        count.values.map(|values| values.0).unwrap_or_default(),
    );
    let opcodes: Vec<String> = app
        .db
        .query_all_raw(explain)
        .await
        .expect("explain the count")
        .iter()
        .map(|row| row.try_get_by_index(1).expect("an opcode"))
        .collect();
    assert!(
        opcodes.iter().any(|op| op == "Count") && !opcodes.iter().any(|op| op == "AggStep"),
        "the unfiltered count steps through rows: {opcodes:?}"
    );

    let stored = entities::restaurant::Entity::find()
        .count(&app.db)
        .await
        .expect("count the table");
    let answer = app
        .graphql(
            r#"{ all: restaurants { totalCount } italian: restaurants(filter: { cuisines: ["italian"] }) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(answer.data()["all"]["totalCount"], stored);
    let italian = answer.data()["italian"]["totalCount"]
        .as_u64()
        .expect("a count");
    assert!(
        italian > 0 && italian < stored,
        "the filter counts only Italian restaurants: {italian} of {stored}"
    );
}
