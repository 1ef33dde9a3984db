//! `importMenu`: a point-of-sale system keeps a menu in sync by its own ids. The import makes
//! the menu match in one transaction, twice changes nothing, a bad entry changes nothing at
//! all, and only the restaurant's people (and `menu:write` tokens of them) may run it.

use dishpatch::seed;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, db_test},
    orders::{order_input, place, roma_items},
};

const IMPORT: &str = "mutation($input: ImportMenuInput!) { importMenu(input: $input) {
    summary { categories { created updated removed } items { created updated removed }
              optionGroups { created updated removed } options { created updated removed } }
    restaurant { id }
    userErrors { field code message } } }";
const MENU: &str = "query($id: ID!) { node(id: $id) { ... on Restaurant { menu { categories { id name items {
    id name description price { amount } available dietaryTags allergens
    optionGroups { id name minChoices maxChoices options { id name priceDelta { amount } available } } } } } } } }";

/// The POS's menu: two categories, three items, one with a required size.
fn pos_menu() -> Value {
    json!([
        { "externalId": "cat-pizza", "name": "Pizza", "items": [
            { "externalId": "sku-margherita", "name": "Margherita", "description": "Tomato, mozzarella", "price": "8.50",
              "dietaryTags": ["VEGETARIAN"], "allergens": ["GLUTEN", "MILK"],
              "optionGroups": [{ "externalId": "grp-size", "name": "Size", "minChoices": 1, "maxChoices": 1, "options": [
                  { "externalId": "opt-26", "name": "26 cm" }, { "externalId": "opt-32", "name": "32 cm", "priceDelta": "2.50" } ] }] },
            { "externalId": "sku-diavola", "name": "Diavola", "price": "10.00", "allergens": ["GLUTEN", "MILK"] },
        ] },
        { "externalId": "cat-drinks", "name": "Drinks", "items": [
            { "externalId": "sku-water", "name": "Water", "price": "2.00", "available": false },
        ] },
    ])
}

fn tally(created: u32, updated: u32, removed: u32) -> Value {
    json!({ "created": created, "updated": updated, "removed": removed })
}

async fn import(
    app: &TestApp,
    who: &str,
    restaurant: &str,
    categories: Value,
) -> crate::helpers::GraphqlResponse {
    app.graphql_as(
        Some(who),
        IMPORT,
        json!({ "input": { "restaurantId": restaurant, "categories": categories } }),
    )
    .await
}

async fn menu(app: &TestApp, restaurant: &str) -> Value {
    app.graphql(MENU, json!({ "id": restaurant })).await.data()["node"]["menu"].clone()
}

db_test! {
    /// The first import replaces the seeded menu (orders keep their lines); the same import
    /// again changes nothing; a changed one updates, moves and removes exactly what changed;
    /// one bad entry anywhere changes nothing and every problem is named at its path.
    async fn imports_match_the_menu_once_and_all_or_nothing(app) {
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let ordered = items.iter().find(|(_, ok, _)| *ok).unwrap().0.clone();
        let placed = place(&app, &customer, order_input(&restaurant, std::slice::from_ref(&ordered), "before-import")).await;
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let pos = format!("Bearer {}", app.tokens.issue(owner_id, Some(&["menu:write".to_owned()]), None, chrono::Utc::now()));
        let seeded_categories = menu(&app, &restaurant).await["categories"].as_array().unwrap().len() as u32;

        let first = import(&app, &pos, &restaurant, pos_menu()).await;
        assert_eq!(first.data()["importMenu"]["userErrors"], json!([]));
        assert_eq!(first.data()["importMenu"]["summary"], json!({
            "categories": tally(2, 0, seeded_categories), "items": tally(3, 0, items.len() as u32),
            "optionGroups": tally(1, 0, 0), "options": tally(2, 0, 0) }));
        let shown = menu(&app, &restaurant).await;
        let names: Vec<(&str, Vec<&str>)> = shown["categories"].as_array().unwrap().iter()
            .map(|c| (c["name"].as_str().unwrap(), c["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect())).collect();
        assert_eq!(names, [("Pizza", vec!["Margherita", "Diavola"]), ("Drinks", vec!["Water"])]);
        let margherita = shown["categories"][0]["items"][0].clone();
        assert_eq!(margherita["allergens"], json!(["GLUTEN", "MILK"]));
        assert_eq!(margherita["dietaryTags"], json!(["VEGETARIAN"]));
        assert_eq!(margherita["optionGroups"][0]["options"][1]["priceDelta"]["amount"], "2.50");
        assert_eq!(shown["categories"][1]["items"][0]["available"], false);
        let order = app.graphql_as(Some(&customer), "query($id: ID!) { order(id: $id) { lines { name menuItem { id } } } }", json!({ "id": placed["order"]["id"] })).await;
        assert_eq!(order.data()["order"]["lines"][0]["menuItem"], Value::Null, "the old item left the menu");
        assert!(order.data()["order"]["lines"][0]["name"].is_string(), "the order keeps its line");

        // The same menu again: nothing changes, ids included.
        let again = import(&app, &pos, &restaurant, pos_menu()).await;
        assert_eq!(again.data()["importMenu"]["summary"], json!({
            "categories": tally(0, 0, 0), "items": tally(0, 0, 0), "optionGroups": tally(0, 0, 0), "options": tally(0, 0, 0) }));
        assert_eq!(menu(&app, &restaurant).await, shown);

        // Diavola repriced and moved to Drinks' place, water gone, a new option on the size.
        let mut changed = pos_menu();
        changed[0]["items"][1]["price"] = json!("11.00");
        let diavola = changed[0]["items"].as_array_mut().unwrap().remove(1);
        changed[1]["items"] = json!([diavola]);
        changed[0]["items"][0]["optionGroups"][0]["options"].as_array_mut().unwrap().push(json!({ "externalId": "opt-40", "name": "40 cm", "priceDelta": "5" }));
        let third = import(&app, &pos, &restaurant, changed.clone()).await;
        assert_eq!(third.data()["importMenu"]["summary"], json!({
            "categories": tally(0, 0, 0), "items": tally(0, 1, 1), "optionGroups": tally(0, 0, 0), "options": tally(1, 0, 0) }));
        let after = menu(&app, &restaurant).await;
        assert_eq!(after["categories"][1]["items"][0]["name"], "Diavola");
        assert_eq!(after["categories"][1]["items"][0]["price"]["amount"], "11.00");
        assert_eq!(after["categories"][0]["items"][0]["id"], margherita["id"], "matched by external id, the id stays");

        // Bad entries: every one is named; nothing changes.
        let mut bad = changed.clone();
        bad[0]["items"][0]["price"] = json!("free");
        bad[1]["items"][0]["externalId"] = json!("sku-margherita");
        bad[1]["name"] = json!("");
        bad[0]["items"][0]["optionGroups"][0]["options"][0]["externalId"] = json!("opt-32");
        let refused = import(&app, &pos, &restaurant, bad).await;
        assert_eq!(refused.data()["importMenu"]["summary"], Value::Null);
        let mut fields: Vec<Value> = refused.data()["importMenu"]["userErrors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
        fields.sort_by_key(ToString::to_string);
        assert_eq!(fields, [
            json!(["input", "categories", "0", "items", "0", "optionGroups", "0", "options", "1", "externalId"]),
            json!(["input", "categories", "0", "items", "0", "price"]),
            json!(["input", "categories", "1", "items", "0", "externalId"]),
            json!(["input", "categories", "1", "name"]),
        ]);
        assert_eq!(menu(&app, &restaurant).await, after, "a refused import changes nothing");

        // An empty menu is a valid import: everything goes.
        let emptied = import(&app, &pos, &restaurant, json!([])).await;
        assert_eq!(emptied.data()["importMenu"]["summary"]["items"], tally(0, 0, 2));
        assert_eq!(menu(&app, &restaurant).await["categories"], json!([]));
    }
}

db_test! {
    /// Owners, staff, admins and `menu:write` tokens may import; another restaurant's owner,
    /// customers, tokens without the scope and anonymous callers may not, and their attempts
    /// change nothing.
    async fn only_the_restaurants_people_import_its_menu(app) {
        let (restaurant, _) = roma_items(&app).await;
        let before = menu(&app, &restaurant).await;
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let scoped = |scope: &str| format!("Bearer {}", app.tokens.issue(owner_id, Some(&[scope.to_owned()]), None, chrono::Utc::now()));
        let other_owner = format!("Bearer {}", app.tokens.issue(owner_id + 1, None, None, chrono::Utc::now()));
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        for who in [other_owner, customer, scoped("orders:write"), scoped("webhooks:write")] {
            let refused = import(&app, &who, &restaurant, pos_menu()).await;
            assert_eq!(refused.error_code(), "FORBIDDEN", "{who}");
        }
        let anonymous = app.graphql(IMPORT, json!({ "input": { "restaurantId": restaurant, "categories": [] } })).await;
        assert_eq!(anonymous.error_code(), "UNAUTHENTICATED");
        assert_eq!(menu(&app, &restaurant).await, before);
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let done = import(&app, &admin, &restaurant, pos_menu()).await;
        assert_eq!(done.data()["importMenu"]["userErrors"], json!([]));
        let staff = crate::settings::staff_of(&app, &restaurant).await;
        let mut renamed = pos_menu();
        renamed[0]["name"] = json!("Pizze");
        let by_staff = import(&app, &staff, &restaurant, renamed).await;
        assert_eq!(by_staff.data()["importMenu"]["summary"]["categories"], tally(0, 1, 0));
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let again = import(&app, &owner, &restaurant, pos_menu()).await;
        assert_eq!(again.data()["importMenu"]["summary"]["items"], tally(0, 0, 0));
        let missing = import(&app, &admin, &dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::Restaurant, 9_999_999).0, pos_menu()).await;
        assert_eq!(missing.data()["importMenu"]["userErrors"][0]["code"], "NOT_FOUND");
    }
}

/// A POS menu of `n` items in two categories, each item with a size group of two options.
fn menu_of(n: usize) -> Value {
    let items = |from: usize, to: usize| -> Vec<Value> {
        (from..to)
            .map(|i| json!({ "externalId": format!("sku-{i}"), "name": format!("Dish {i}"), "price": "9.00",
                "optionGroups": [{ "externalId": format!("grp-{i}"), "name": "Size", "minChoices": 1, "maxChoices": 1,
                    "options": [{ "externalId": format!("opt-{i}-s"), "name": "Small" }, { "externalId": format!("opt-{i}-l"), "name": "Large", "priceDelta": "2.00" }] }] }))
            .collect()
    };
    json!([
        { "externalId": "cat-a", "name": "A", "items": items(0, n / 2) },
        { "externalId": "cat-b", "name": "B", "items": items(n / 2, n) },
    ])
}

db_test! {
    /// A POS syncing a menu that has not changed: the import changes nothing and runs the same
    /// statements for 6 items as for 60 (the items' option groups are read at once).
    async fn an_unchanged_import_runs_the_same_statements_for_6_and_60_items(app) {
        let (restaurant, _) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let mut statements = Vec::new();
        for n in [6, 60] {
            let first = import(&app, &owner, &restaurant, menu_of(n)).await;
            assert_eq!(first.data()["importMenu"]["userErrors"], json!([]));
            let again = import(&app, &owner, &restaurant, menu_of(n)).await;
            let summary = &again.data()["importMenu"]["summary"];
            for part in ["categories", "items", "optionGroups", "options"] {
                assert_eq!(summary[part], tally(0, 0, 0), "{part}: {summary}");
            }
            statements.push(again.sql_statements());
        }
        assert_eq!(statements[0], statements[1], "statements of an unchanged import of 6 and of 60 items");
    }
}
