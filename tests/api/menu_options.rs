//! Option groups on menu items: set by the restaurant, shown on the menu, chosen, checked and
//! priced by `quoteOrder` and `placeOrder`, and kept by the order as they were.

use dishpatch::{
    graphql::relay::{GlobalId, NodeKind},
    seed,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::{
    helpers::db_test,
    orders::{order_input, roma_items},
};

pub(crate) const SET_OPTIONS: &str = "mutation($input: SetMenuItemOptionsInput!) { setMenuItemOptions(input: $input) {
    menuItem { id optionGroups { id name minChoices maxChoices required options { id name priceDelta { amount currency } available } } }
    userErrors { field code message } } }";
const ITEM: &str = "query($id: ID!) { node(id: $id) { ... on MenuItem { price { amount } optionGroups { id name minChoices maxChoices options { id name priceDelta { amount } available } } } } }";
const PLACE: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
    order { id subtotal { amount } lines { name quantity unitPrice { amount } lineTotal { amount } options { optionId groupName name priceDelta { amount } } } }
    userErrors { field code message } } }";
const QUOTE: &str = "query($input: QuoteOrderInput!) { quoteOrder(input: $input) {
    quote { subtotal { amount } lines { unitPrice { amount } options { groupName name } } }
    userErrors { field code message } } }";

/// Cents of a decimal amount.
fn cents(amount: &Value) -> i64 {
    let (major, minor) = amount.as_str().unwrap().split_once('.').unwrap();
    major.parse::<i64>().unwrap() * 100 + minor.parse::<i64>().unwrap()
}

/// "Size": exactly one of Small / Large (+2.00); "Extras": up to two of Cheese (+1.50) and
/// Olives (+0.80, sold out).
fn size_and_extras() -> Value {
    json!([
        { "name": "Size", "minChoices": 1, "maxChoices": 1, "options": [
            { "name": "Small" }, { "name": "Large", "priceDelta": "2.00" } ] },
        { "name": "Extras", "maxChoices": 2, "options": [
            { "name": "Cheese", "priceDelta": "1.50" }, { "name": "Olives", "priceDelta": "0.8", "available": false } ] },
    ])
}

fn line(item: &str, options: &[&Value], quantity: i32) -> Value {
    json!({ "menuItemId": item, "quantity": quantity, "optionIds": options })
}

fn cart(restaurant: &str, lines: Value, key: &str) -> Value {
    let mut input = order_input(restaurant, &[], key);
    input["lines"] = lines;
    input
}

db_test! {
    /// The owner gives an item a required "Size" and optional "Extras": the menu shows them,
    /// quotes and orders are priced from them, every wrong choice is refused with its path,
    /// and the order keeps what was chosen after the options change.
    async fn options_are_chosen_checked_priced_and_kept(app) {
        let (restaurant, items) = roma_items(&app).await;
        let (item, other) = {
            let mut open = items.iter().filter(|(_, available, _)| *available);
            (open.next().unwrap().clone(), open.next().unwrap().0.clone())
        };
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let set = app.graphql_as(Some(&owner), SET_OPTIONS, json!({ "input": { "menuItemId": item.0, "optionGroups": size_and_extras() } })).await;
        assert_eq!(set.data()["setMenuItemOptions"]["userErrors"], json!([]));
        let groups = set.data()["setMenuItemOptions"]["menuItem"]["optionGroups"].clone();
        assert_eq!(groups[0]["name"], "Size");
        assert_eq!(groups[0]["required"], true);
        assert_eq!(groups[1]["required"], false);
        assert_eq!(groups[0]["options"][1]["priceDelta"], json!({ "amount": "2.00", "currency": "EUR" }));
        assert_eq!(groups[1]["options"][1]["available"], false);
        let shown = app.graphql(ITEM, json!({ "id": item.0 })).await;
        assert_eq!(shown.data()["node"]["optionGroups"][1]["options"][0]["name"], "Cheese");
        let (small, large) = (&groups[0]["options"][0]["id"], &groups[0]["options"][1]["id"]);
        let (cheese, olives) = (&groups[1]["options"][0]["id"], &groups[1]["options"][1]["id"]);

        // Every wrong choice, with its path and code; nothing is placed.
        let other_items_option = {
            let set = app.graphql_as(Some(&owner), SET_OPTIONS, json!({ "input": { "menuItemId": other,
                "optionGroups": [{ "name": "Dip", "maxChoices": 1, "options": [{ "name": "Aioli" }] }] } })).await;
            set.data()["setMenuItemOptions"]["menuItem"]["optionGroups"][0]["options"][0]["id"].clone()
        };
        for (chosen, field, code) in [
            (vec![], json!(["input", "lines", "0", "optionIds"]), "INVALID_OPTIONS"),
            (vec![small, large], json!(["input", "lines", "0", "optionIds"]), "INVALID_OPTIONS"),
            (vec![large, olives], json!(["input", "lines", "0", "optionIds", "1"]), "ITEM_UNAVAILABLE"),
            (vec![large, &other_items_option], json!(["input", "lines", "0", "optionIds", "1"]), "ITEM_NOT_FOUND"),
            (vec![large, cheese, cheese], json!(["input", "lines", "0", "optionIds", "2"]), "INVALID_OPTIONS"),
        ] {
            let input = cart(&restaurant, json!([line(&item.0, &chosen, 1)]), "options-wrong");
            let quoted = app.graphql_as(Some(&customer), QUOTE, json!({ "input": { "restaurantId": restaurant, "lines": input["lines"], "deliveryLocation": input["deliveryLocation"] } })).await;
            assert_eq!(quoted.data()["quoteOrder"]["userErrors"][0]["field"], field, "{chosen:?}");
            assert_eq!(quoted.data()["quoteOrder"]["userErrors"][0]["code"], code, "{chosen:?}");
            let placed = app.graphql_as(Some(&customer), PLACE, json!({ "input": input })).await;
            assert_eq!(placed.data()["placeOrder"]["userErrors"][0]["code"], code, "{chosen:?}");
        }
        let message = app.graphql_as(Some(&customer), PLACE, json!({ "input": cart(&restaurant, json!([line(&item.0, &[], 1)]), "options-none") })).await;
        assert!(message.data()["placeOrder"]["userErrors"][0]["message"].as_str().unwrap().contains("exactly 1 of \"Size\""));
        // A typed ID of another kind is not an option.
        let wrong_kind = app.graphql_as(Some(&customer), PLACE, json!({ "input": cart(&restaurant, json!([{ "menuItemId": item.0, "quantity": 1, "optionIds": [item.0] }]), "options-kind") })).await;
        assert_eq!(wrong_kind.error_code(), "BAD_USER_INPUT");

        // Large with cheese, twice: priced from the menu, the same in the quote and the order.
        let lines = json!([line(&item.0, &[cheese, large], 2)]);
        let quoted = app.graphql_as(Some(&customer), QUOTE, json!({ "input": { "restaurantId": restaurant, "lines": lines, "deliveryLocation": { "latitude": 52.53, "longitude": 13.40 } } })).await;
        let quote = quoted.data()["quoteOrder"]["quote"].clone();
        let unit = cents(&json!(item.2)) + 200 + 150;
        assert_eq!(cents(&quote["lines"][0]["unitPrice"]["amount"]), unit);
        assert_eq!(quote["lines"][0]["options"], json!([{ "groupName": "Size", "name": "Large" }, { "groupName": "Extras", "name": "Cheese" }]));
        let placed = app.graphql_as(Some(&customer), PLACE, json!({ "input": cart(&restaurant, lines, "options-ok") })).await;
        let order = placed.data()["placeOrder"]["order"].clone();
        assert_eq!(placed.data()["placeOrder"]["userErrors"], json!([]));
        assert_eq!(cents(&order["lines"][0]["unitPrice"]["amount"]), unit);
        assert_eq!(cents(&order["lines"][0]["lineTotal"]["amount"]), 2 * unit);
        assert_eq!(cents(&order["subtotal"]["amount"]), 2 * unit);
        assert_eq!(order["subtotal"], quote["subtotal"]);
        assert_eq!(order["lines"][0]["options"], json!([
            { "optionId": large, "groupName": "Size", "name": "Large", "priceDelta": { "amount": "2.00" } },
            { "optionId": cheese, "groupName": "Extras", "name": "Cheese", "priceDelta": { "amount": "1.50" } },
        ]));

        // The restaurant changes the options: Large goes, Small is renamed (kept by id), a
        // new group comes. The order keeps what it was placed with.
        let changed = app.graphql_as(Some(&owner), SET_OPTIONS, json!({ "input": { "menuItemId": item.0, "optionGroups": [
            { "id": groups[0]["id"], "name": "Size", "minChoices": 1, "maxChoices": 1, "options": [{ "id": small, "name": "Regular" }] },
            { "name": "Spice", "maxChoices": 1, "options": [{ "name": "Hot", "priceDelta": "0" }] },
        ] } })).await;
        let now = changed.data()["setMenuItemOptions"]["menuItem"]["optionGroups"].clone();
        assert_eq!(now[0]["id"], groups[0]["id"]);
        assert_eq!(now[0]["options"], json!([{ "id": small, "name": "Regular", "priceDelta": { "amount": "0.00", "currency": "EUR" }, "available": true }]));
        assert_eq!(now[1]["name"], "Spice");
        assert_eq!(now.as_array().unwrap().len(), 2);
        let kept = app.graphql_as(Some(&customer), "query($id: ID!) { order(id: $id) { lines { unitPrice { amount } options { name } } } }", json!({ "id": order["id"] })).await;
        assert_eq!(kept.data()["order"]["lines"][0]["options"], json!([{ "name": "Large" }, { "name": "Cheese" }]));
        assert_eq!(cents(&kept.data()["order"]["lines"][0]["unitPrice"]["amount"]), unit);
        let stale = app.graphql_as(Some(&customer), PLACE, json!({ "input": cart(&restaurant, json!([line(&item.0, &[large], 1)]), "options-stale") })).await;
        assert_eq!(stale.data()["placeOrder"]["userErrors"][0]["code"], "ITEM_NOT_FOUND");
        let removed = entities::menu_option::Entity::find_by_id(decode(large)).one(&app.db).await.unwrap();
        assert!(removed.is_none(), "the removed option's row is gone");
    }
}

fn decode(id: &Value) -> i64 {
    GlobalId::decode_as(
        &async_graphql::ID(id.as_str().unwrap().to_owned()),
        NodeKind::MenuOption,
    )
    .unwrap()
}

db_test! {
    /// Bad groups are user errors that change nothing; ids of another item's groups are not
    /// found; the restaurant's staff, admins and `menu:write` tokens may set options, other
    /// restaurants' owners, customers and tokens without the scope may not.
    async fn option_groups_are_checked_and_guarded(app) {
        let (_, items) = roma_items(&app).await;
        let (item, other) = (items[0].0.clone(), items[1].0.clone());
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let set = |who: String, item: String, groups: Value| {
            let app = &app;
            async move { app.graphql_as(Some(&who), SET_OPTIONS, json!({ "input": { "menuItemId": item, "optionGroups": groups } })).await }
        };
        let first = set(owner.clone(), item.clone(), size_and_extras()).await;
        let before = first.data()["setMenuItemOptions"]["menuItem"]["optionGroups"].clone();
        let other_group = set(owner.clone(), other.clone(), json!([{ "name": "Dip", "maxChoices": 1, "options": [{ "name": "Aioli" }] }])).await;
        let other_group = other_group.data()["setMenuItemOptions"]["menuItem"]["optionGroups"][0]["id"].clone();
        for (groups, field, code) in [
            (json!([{ "name": "Size", "minChoices": 2, "maxChoices": 2, "options": [{ "name": "S" }] }]), json!(["input", "optionGroups", "0", "minChoices"]), "INVALID"),
            (json!([{ "name": "Size", "maxChoices": 0, "options": [{ "name": "S" }] }]), json!(["input", "optionGroups", "0", "maxChoices"]), "INVALID"),
            (json!([{ "name": "Size", "maxChoices": 1, "options": [] }]), json!(["input", "optionGroups", "0", "options"]), "INVALID"),
            (json!([{ "name": " ", "maxChoices": 1, "options": [{ "name": "S" }] }]), json!(["input", "optionGroups", "0", "name"]), "INVALID"),
            (json!([{ "name": "Size", "maxChoices": 1, "options": [{ "name": "S", "priceDelta": "-1" }] }]), json!(["input", "optionGroups", "0", "options", "0", "priceDelta"]), "INVALID"),
            (json!([{ "name": "Size", "maxChoices": 1, "options": [{ "name": "S", "priceDelta": "10000.01" }] }]), json!(["input", "optionGroups", "0", "options", "0", "priceDelta"]), "INVALID"),
            (json!([{ "name": "Size", "maxChoices": 1, "options": [{ "name": "x".repeat(101) }] }]), json!(["input", "optionGroups", "0", "options", "0", "name"]), "INVALID"),
            (json!([{ "id": other_group, "name": "Dip", "maxChoices": 1, "options": [{ "name": "Aioli" }] }]), json!(["input", "optionGroups", "0", "id"]), "NOT_FOUND"),
            (json!([{ "id": before[0]["id"], "name": "A", "maxChoices": 1, "options": [{ "name": "x" }] }, { "id": before[0]["id"], "name": "B", "maxChoices": 1, "options": [{ "name": "y" }] }]), json!(["input", "optionGroups", "1", "id"]), "INVALID"),
        ] {
            let refused = set(owner.clone(), item.clone(), groups.clone()).await;
            assert_eq!(refused.data()["setMenuItemOptions"]["userErrors"][0]["field"], field, "{groups}");
            assert_eq!(refused.data()["setMenuItemOptions"]["userErrors"][0]["code"], code, "{groups}");
        }
        // Every problem at once, each at its place, and nothing changed.
        let several = json!([
            { "name": " ", "maxChoices": 0, "options": [{ "name": "S", "priceDelta": "-1" }] },
            { "name": "Extras", "maxChoices": 1, "options": [] },
        ]);
        let refused = set(owner.clone(), item.clone(), several).await;
        let payload = &refused.data()["setMenuItemOptions"];
        assert_eq!(payload["menuItem"], Value::Null);
        let mut fields: Vec<Value> = payload["userErrors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
        fields.sort_by_key(ToString::to_string);
        assert_eq!(
            fields,
            vec![
                json!(["input", "optionGroups", "0", "maxChoices"]),
                json!(["input", "optionGroups", "0", "name"]),
                json!(["input", "optionGroups", "0", "options", "0", "priceDelta"]),
                // No options: none to choose, and at most none may be chosen.
                json!(["input", "optionGroups", "1", "maxChoices"]),
                json!(["input", "optionGroups", "1", "options"]),
            ],
            "{payload}"
        );
        let too_many: Vec<Value> = (0..21).map(|n| json!({ "name": format!("G{n}"), "maxChoices": 1, "options": [{ "name": "x" }] })).collect();
        let refused = set(owner.clone(), item.clone(), json!(too_many)).await;
        assert_eq!(refused.data()["setMenuItemOptions"]["userErrors"][0]["code"], "INVALID");
        let shown = app.graphql(ITEM, json!({ "id": item })).await;
        let after: Vec<Value> = shown.data()["node"]["optionGroups"].as_array().unwrap().iter().map(|g| g["id"].clone()).collect();
        assert_eq!(after, before.as_array().unwrap().iter().map(|g| g["id"].clone()).collect::<Vec<_>>(), "nothing changed");

        // Who may.
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let scoped = |scope: &str| format!("Bearer {}", app.tokens.issue(owner_id, Some(&[scope.to_owned()]), None, chrono::Utc::now()));
        let other_owner = format!("Bearer {}", app.tokens.issue(owner_id + 1, None, None, chrono::Utc::now()));
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let one = json!([{ "name": "Dip", "maxChoices": 1, "options": [{ "name": "Aioli" }] }]);
        let restaurant = crate::orders::roma_items(&app).await.0;
        let staff = crate::settings::staff_of(&app, &restaurant).await;
        for who in [staff, admin, scoped("menu:write")] {
            let done = set(who.clone(), item.clone(), one.clone()).await;
            assert_eq!(done.data()["setMenuItemOptions"]["userErrors"], json!([]), "{who}");
        }
        for who in [other_owner, customer, scoped("orders:write")] {
            let refused = set(who.clone(), item.clone(), json!([])).await;
            assert_eq!(refused.error_code(), "FORBIDDEN", "{who}");
        }
        let anonymous = app.graphql(SET_OPTIONS, json!({ "input": { "menuItemId": item, "optionGroups": [] } })).await;
        assert_eq!(anonymous.error_code(), "UNAUTHENTICATED");
        let shown = app.graphql(ITEM, json!({ "id": item })).await;
        assert_eq!(shown.data()["node"]["optionGroups"][0]["name"], "Dip", "the refused calls removed nothing");
    }
}

db_test! {
    /// A whole menu page with options reads them in a fixed number of statements, whether it
    /// shows one restaurant or twenty; the demo's mains come with optional extras.
    async fn option_groups_on_a_page_cost_the_same_statements(app) {
        let query = "query($n: Int!) { restaurants(first: $n) { edges { node { menu { items { name optionGroups { name options { name priceDelta { amount } } } } } } } } }";
        let one = app.graphql(query, json!({ "n": 1 })).await;
        let many = app.graphql(query, json!({ "n": 20 })).await;
        assert!(many.data()["restaurants"]["edges"].as_array().unwrap().len() > 1);
        assert_eq!(one.sql_statements(), many.sql_statements(), "{} vs {}", one.sql_statements(), many.sql_statements());
        let items: Vec<Value> = many.data()["restaurants"]["edges"].as_array().unwrap().iter()
            .flat_map(|e| e["node"]["menu"]["items"].as_array().unwrap().clone()).collect();
        assert!(items.iter().any(|i| i["optionGroups"][0]["name"] == "Extras"));
        let groups = entities::menu_option_group::Entity::find()
            .filter(entities::menu_option_group::Column::MinChoices.gt(0))
            .order_by_asc(entities::menu_option_group::Column::Id)
            .all(&app.db).await.unwrap();
        assert!(groups.is_empty(), "the demo's options are optional, so every demo cart stays valid");
    }
}
