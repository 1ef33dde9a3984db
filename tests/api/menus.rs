//! Restaurants keep their own menus: who may change them, what is checked, and that readers,
//! orders and webhooks see the changes.

use std::time::Duration;

use dishpatch::{
    graphql::relay::{GlobalId, NodeKind},
    seed,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp, db_test, decode_id},
    orders::{order_input, place, roma_items},
    webhooks::{Receiver, create, quick},
};

const CREATE_CATEGORY: &str = "mutation($input: CreateMenuCategoryInput!) { createMenuCategory(input: $input) { category { id name position } userErrors { field code } } }";
const CREATE_ITEM: &str = "mutation($input: CreateMenuItemInput!) { createMenuItem(input: $input) {
    menuItem { id name description price { amount currency } available dietaryTags category { id } } userErrors { field code message } } }";
const UPDATE_ITEM: &str = "mutation($input: UpdateMenuItemInput!) { updateMenuItem(input: $input) { menuItem { id name price { amount } available } userErrors { field code } } }";
const AVAILABILITY: &str = "mutation($input: SetMenuItemsAvailabilityInput!) { setMenuItemsAvailability(input: $input) { menuItems { id available } userErrors { field code } } }";
const DELETE_ITEM: &str = "mutation($input: DeleteMenuItemInput!) { deleteMenuItem(input: $input) { deletedId userErrors { field code } } }";
const DELETE_CATEGORY: &str = "mutation($input: DeleteMenuCategoryInput!) { deleteMenuCategory(input: $input) { deletedId userErrors { field code } } }";
const REORDER: &str = "mutation($input: ReorderMenuCategoriesInput!) { reorderMenuCategories(input: $input) { categories { id position } userErrors { field code } } }";
const MENU: &str = "query($id: ID!) { node(id: $id) { ... on Restaurant { menu { categories { id name items { id name price { amount } available } } } } } }";

async fn run(
    app: &TestApp,
    who: Option<&str>,
    query: &str,
    input: Value,
) -> crate::helpers::GraphqlResponse {
    app.graphql_as(who, query, json!({ "input": input })).await
}

async fn menu(app: &TestApp, restaurant: &str) -> Value {
    app.graphql(MENU, json!({ "id": restaurant })).await.data()["node"]["menu"].clone()
}

/// Webhooks allowed to reach the local receiver.
async fn menu_app(backend: Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, quick).await
}

db_test! {
    /// The owner builds and edits the menu; readers see each change at once, a sold-out item
    /// cannot be ordered, a deleted item leaves the menu while past orders keep its name and
    /// price, a deleted category hands its items over; a webhook says what changed.
    setup = menu_app,
    async fn owners_keep_their_menu(app) {
        let (restaurant, items) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let hooks = Receiver::start().await;
        let endpoint = create(&app, &owner, json!({ "url": hooks.url, "events": ["MENU_UPDATED"], "restaurantId": restaurant })).await;
        hooks.secrets(&[endpoint["secret"].as_str().unwrap()]).await;

        let made = run(&app, Some(&owner), CREATE_CATEGORY, json!({ "restaurantId": restaurant, "name": "  Specials " })).await;
        let category = made.data()["createMenuCategory"]["category"].clone();
        assert_eq!(category["name"], "Specials");
        let dish = run(&app, Some(&owner), CREATE_ITEM, json!({ "categoryId": category["id"], "name": "Truffle risotto", "description": "Carnaroli, black truffle", "price": "18.5", "dietaryTags": ["VEGETARIAN", "GLUTEN_FREE", "VEGETARIAN"] })).await;
        let dish = dish.data()["createMenuItem"]["menuItem"].clone();
        assert_eq!(dish["price"], json!({ "amount": "18.50", "currency": "EUR" }));
        assert_eq!(dish["dietaryTags"], json!(["GLUTEN_FREE", "VEGETARIAN"]));
        assert_eq!(dish["available"], true);
        let shown = menu(&app, &restaurant).await;
        let specials = shown["categories"].as_array().unwrap().iter().find(|c| c["id"] == category["id"]).unwrap().clone();
        assert_eq!(specials["items"][0]["name"], "Truffle risotto");

        // Ordered at 18.50, then repriced and renamed: the order keeps what it was placed with.
        let placed = place(&app, &customer, order_input(&restaurant, &[dish["id"].as_str().unwrap().to_owned()], "menu-1")).await;
        assert_eq!(placed["order"]["lines"][0]["unitPrice"]["amount"], "18.50");
        let changed = run(&app, Some(&owner), UPDATE_ITEM, json!({ "id": dish["id"], "price": "21.00", "name": "Risotto al tartufo" })).await;
        assert_eq!(changed.data()["updateMenuItem"]["menuItem"]["price"]["amount"], "21.00");

        // 86'd: several items at once; ordering one is refused.
        let others: Vec<Value> = items.iter().filter(|(_, ok, _)| *ok).take(2).map(|(id, _, _)| json!(id)).collect();
        let mut ids = others.clone();
        ids.push(dish["id"].clone());
        let sold = run(&app, Some(&owner), AVAILABILITY, json!({ "menuItemIds": ids, "available": false })).await;
        let sold = sold.data()["setMenuItemsAvailability"]["menuItems"].as_array().unwrap().clone();
        assert_eq!(sold.len(), 3);
        assert!(sold.iter().all(|i| i["available"] == false));
        let refused = place(&app, &customer, order_input(&restaurant, &[dish["id"].as_str().unwrap().to_owned()], "menu-2")).await;
        assert_eq!(refused["userErrors"][0]["code"], "ITEM_UNAVAILABLE");
        run(&app, Some(&owner), AVAILABILITY, json!({ "menuItemIds": others, "available": true })).await;

        // Deleted: gone from the menu and from node(id); the order keeps its line.
        let gone = run(&app, Some(&owner), DELETE_ITEM, json!({ "id": dish["id"] })).await;
        assert_eq!(gone.data()["deleteMenuItem"]["deletedId"], dish["id"]);
        let node = app.graphql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": dish["id"] })).await;
        assert_eq!(node.data()["node"], Value::Null);
        let order = app.graphql_as(Some(&customer), "query($id: ID!) { order(id: $id) { lines { name unitPrice { amount } } } }", json!({ "id": placed["order"]["id"] })).await;
        assert_eq!(order.data()["order"]["lines"][0], json!({ "name": "Truffle risotto", "unitPrice": { "amount": "18.50" } }));

        // Categories: reorder (the new one first), then delete one with items, moving them.
        let categories: Vec<Value> = menu(&app, &restaurant).await["categories"].as_array().unwrap().iter().map(|c| c["id"].clone()).collect();
        let mut order_ids = vec![category["id"].clone()];
        order_ids.extend(categories.iter().filter(|id| **id != category["id"]).cloned());
        let reordered = run(&app, Some(&owner), REORDER, json!({ "restaurantId": restaurant, "categoryIds": order_ids })).await;
        assert_eq!(reordered.data()["reorderMenuCategories"]["userErrors"], json!([]));
        assert_eq!(menu(&app, &restaurant).await["categories"][0]["id"], category["id"]);
        let partial = run(&app, Some(&owner), REORDER, json!({ "restaurantId": restaurant, "categoryIds": [category["id"]] })).await;
        assert_eq!(partial.data()["reorderMenuCategories"]["userErrors"][0]["code"], "INVALID");
        let (first, second) = (categories[0].clone(), categories[1].clone());
        let before = menu(&app, &restaurant).await;
        let items_of = |menu: &Value, id: &Value| -> Vec<Value> {
            menu["categories"].as_array().unwrap().iter().find(|c| &c["id"] == id).map(|c| c["items"].as_array().unwrap().iter().map(|i| i["id"].clone()).collect()).unwrap_or_default()
        };
        let moving = items_of(&before, &first);
        let needs_target = run(&app, Some(&owner), DELETE_CATEGORY, json!({ "id": first })).await;
        assert_eq!(needs_target.data()["deleteMenuCategory"]["userErrors"], json!([{ "field": ["input", "moveItemsTo"], "code": "INVALID" }]));
        let moved = run(&app, Some(&owner), DELETE_CATEGORY, json!({ "id": first, "moveItemsTo": second })).await;
        assert_eq!(moved.data()["deleteMenuCategory"]["deletedId"], first);
        let after = menu(&app, &restaurant).await;
        assert!(after["categories"].as_array().unwrap().iter().all(|c| c["id"] != first));
        let now_in_second = items_of(&after, &second);
        assert!(moving.iter().all(|id| now_in_second.contains(id)), "{moving:?} {now_in_second:?}");

        // Each change told the endpoint: created, created, updated, sold out, available,
        // deleted, reordered, deleted.
        let received = hooks.until(Duration::from_secs(20), |r| r.len() >= 8).await;
        let kinds: Vec<&str> = received.iter().map(|r| r["payload"]["data"]["change"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["category_created", "item_created", "item_updated", "items_sold_out", "items_available", "item_deleted", "categories_reordered", "category_deleted"]);
        assert!(received.iter().all(|r| r["type"] == "menu.updated" && r["verifiedWith"] == json!([true])));
        assert_eq!(received[5]["payload"]["data"]["menuItemIds"], json!([dish["id"]]));
    }
}

db_test! {
    /// Staff may change the menu too, admins any menu, tokens only with `menu:write`; another
    /// restaurant's owner, customers and anonymous callers cannot, and bad values change
    /// nothing.
    async fn only_the_restaurants_people_change_its_menu(app) {
        let (restaurant, items) = roma_items(&app).await;
        let item = json!(items[0].0);
        let category = app.graphql("query($id: ID!) { node(id: $id) { ... on MenuItem { category { id } } } }", json!({ "id": item })).await;
        let category = category.data()["node"]["category"]["id"].clone();
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        // A customer (the newest user: no restaurant of their own) made staff of Roma.
        let worker = entities::user::Entity::find()
            .filter(entities::user::Column::Email.like("user%@example.test"))
            .order_by_desc(entities::user::Column::Id)
            .one(&app.db).await.unwrap().unwrap();
        let added = app.graphql_as(Some(&admin), "mutation($input: StaffInput!) { addRestaurantStaff(input: $input) { userErrors { code } } }",
            json!({ "input": { "restaurantId": restaurant, "userId": GlobalId::encode(NodeKind::User, worker.id) } })).await;
        assert_eq!(added.data()["addRestaurantStaff"]["userErrors"], json!([]));
        let staff = format!("Bearer {}", app.tokens.issue(worker.id, None, None, chrono::Utc::now()));
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let with_scope = |scope: &str| format!("Bearer {}", app.tokens.issue(owner_id, Some(&[scope.to_owned()]), None, chrono::Utc::now()));
        // The owner of the demo's second restaurant.
        let other_owner = format!("Bearer {}", app.tokens.issue(owner_id + 1, None, None, chrono::Utc::now()));
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;

        let rename = |n: usize| json!({ "id": item, "name": format!("Renamed {n}") });
        for (n, who) in [&staff, &admin, &with_scope("menu:write")].into_iter().enumerate() {
            let done = run(&app, Some(who), UPDATE_ITEM, rename(n)).await;
            assert_eq!(done.data()["updateMenuItem"]["menuItem"]["name"], format!("Renamed {n}"), "{who}");
        }
        for who in [&other_owner, &customer, &with_scope("orders:write")] {
            for (query, input) in [
                (UPDATE_ITEM, rename(9)),
                (AVAILABILITY, json!({ "menuItemIds": [item], "available": false })),
                (DELETE_ITEM, json!({ "id": item })),
                (CREATE_ITEM, json!({ "categoryId": category, "name": "Intruder", "price": "1.00" })),
                (CREATE_CATEGORY, json!({ "restaurantId": restaurant, "name": "Intruders" })),
                (DELETE_CATEGORY, json!({ "id": category, "moveItemsTo": category })),
            ] {
                let refused = run(&app, Some(who), query, input).await;
                assert_eq!(refused.error_code(), "FORBIDDEN", "{query}");
            }
        }
        assert_eq!(run(&app, None, UPDATE_ITEM, rename(9)).await.error_code(), "UNAUTHENTICATED");
        let shown = app.graphql("query($id: ID!) { node(id: $id) { ... on MenuItem { name available } } }", json!({ "id": item })).await;
        assert_eq!(shown.data()["node"], json!({ "name": "Renamed 2", "available": items[0].1 }));

        // Bad values: user errors, nothing changed.
        let owner = app.bearer(seed::DEMO_OWNER).await;
        for (input, field) in [
            (json!({ "id": item, "price": "0" }), "price"),
            (json!({ "id": item, "price": "10000.01" }), "price"),
            (json!({ "id": item, "price": "1.234" }), "price"),
            (json!({ "id": item, "price": "-3" }), "price"),
            (json!({ "id": item, "name": " " }), "name"),
            (json!({ "id": item, "name": "x".repeat(101) }), "name"),
            (json!({ "id": item, "description": "x".repeat(1001) }), "description"),
        ] {
            let refused = run(&app, Some(&owner), UPDATE_ITEM, input.clone()).await;
            assert_eq!(refused.data()["updateMenuItem"]["userErrors"][0]["field"], json!(["input", field]), "{input}");
        }
        let foreign_category = entities::menu_category::Entity::find()
            .filter(entities::menu_category::Column::RestaurantId.ne(decode_id(&json!(restaurant))))
            .one(&app.db).await.unwrap().unwrap();
        let moved = run(&app, Some(&owner), UPDATE_ITEM, json!({ "id": item, "categoryId": GlobalId::encode(NodeKind::MenuCategory, foreign_category.id) })).await;
        assert_eq!(moved.data()["updateMenuItem"]["userErrors"][0]["field"], json!(["input", "categoryId"]));
        let mixed: Vec<Value> = vec![item.clone(), json!(GlobalId::encode(NodeKind::MenuItem, 10_000_000).0)];
        let unknown = run(&app, Some(&owner), AVAILABILITY, json!({ "menuItemIds": mixed, "available": false })).await;
        assert_eq!(unknown.data()["setMenuItemsAvailability"]["userErrors"], json!([{ "field": ["input", "menuItemIds", "1", "id"], "code": "NOT_FOUND" }]));
        let shown = app.graphql("query($id: ID!) { node(id: $id) { ... on MenuItem { name price { amount } available } } }", json!({ "id": item })).await;
        assert_eq!(shown.data()["node"]["name"], "Renamed 2");
        assert_eq!(shown.data()["node"]["available"], items[0].1, "a refused bulk call changed nothing");
        assert_eq!(shown.data()["node"]["price"]["amount"], items[0].2.as_str());
    }
}

db_test! {
    /// `menuUpdated` over a real WebSocket: each committed menu change of the followed
    /// restaurant arrives with the menu as it is now, other restaurants' changes do not, and a
    /// refused change sends nothing. On PostgreSQL a change made through another replica
    /// arrives too.
    async fn menu_changes_arrive_live(app) {
        let (restaurant, items) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let query = "subscription($r: ID!) { menuUpdated(restaurantId: $r) { restaurant { id } menu { items { id name available } } } }";
        let mut socket = crate::live::follow(&app, &customer, "menu", query, json!({ "r": restaurant })).await;
        // Give the subscription a moment to be registered before the first change.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let item = json!(items[0].0);
        let renamed = run(&app, Some(&owner), UPDATE_ITEM, json!({ "id": item, "name": "Live rename" })).await;
        assert_eq!(renamed.data()["updateMenuItem"]["userErrors"], json!([]));
        let update = crate::live::next(&mut socket, "menuUpdated").await;
        assert_eq!(update["restaurant"]["id"], json!(restaurant));
        let shown = update["menu"]["items"].as_array().unwrap().iter().find(|i| i["id"] == item).unwrap().clone();
        assert_eq!(shown["name"], "Live rename");

        // A refused change and another restaurant's change send nothing; the next one does.
        let refused = run(&app, Some(&owner), UPDATE_ITEM, json!({ "id": item, "price": "0" })).await;
        assert_eq!(refused.data()["updateMenuItem"]["userErrors"][0]["code"], "INVALID");
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let other_owner = format!("Bearer {}", app.tokens.issue(owner_id + 1, None, None, chrono::Utc::now()));
        let other_restaurant = GlobalId::encode(NodeKind::Restaurant, 2).0;
        let elsewhere = run(&app, Some(&other_owner), CREATE_CATEGORY, json!({ "restaurantId": other_restaurant, "name": "Elsewhere" })).await;
        assert_eq!(elsewhere.data()["createMenuCategory"]["userErrors"], json!([]));
        let sold = run(&app, Some(&owner), AVAILABILITY, json!({ "menuItemIds": [item], "available": false })).await;
        assert_eq!(sold.data()["setMenuItemsAvailability"]["userErrors"], json!([]));
        let update = crate::live::next(&mut socket, "menuUpdated").await;
        let shown = update["menu"]["items"].as_array().unwrap().iter().find(|i| i["id"] == item).unwrap().clone();
        assert_eq!(shown, json!({ "id": item, "name": "Live rename", "available": false }), "the next update is the sold-out one");

        if app.database_url.starts_with("postgres") {
            let (other, instance) = app.another_instance().await;
            tokio::spawn(instance.run_until_stopped());
            let through_other = app.client.post(format!("{other}/graphql")).header("authorization", &owner)
                .json(&json!({ "query": UPDATE_ITEM, "variables": { "input": { "id": item, "name": "From the other replica" } } }))
                .send().await.unwrap().json::<Value>().await.unwrap();
            assert_eq!(through_other["data"]["updateMenuItem"]["userErrors"], json!([]));
            let update = crate::live::next(&mut socket, "menuUpdated").await;
            let shown = update["menu"]["items"].as_array().unwrap().iter().find(|i| i["id"] == item).unwrap().clone();
            assert_eq!(shown["name"], "From the other replica");
        }

        // A restaurant that does not exist cannot be followed.
        let mut missing = crate::live::follow(&app, &customer, "gone", query, json!({ "r": GlobalId::encode(NodeKind::Restaurant, 9_999_999).0 })).await;
        let message = crate::websocket::receive(&mut missing).await;
        assert_eq!(message["type"], "next", "{message}");
        assert_eq!(message["payload"]["data"], Value::Null, "{message}");
        assert_eq!(message["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND", "{message}");
        assert_eq!(crate::websocket::receive(&mut missing).await["type"], "complete");
    }
}

db_test! {
    /// Items are put in a new order within their category; a list that leaves one out or
    /// names another category's item is refused and changes nothing; strangers cannot.
    async fn items_are_reordered_within_their_category(app) {
        let (restaurant, _) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let query = "mutation($input: ReorderMenuItemsInput!) { reorderMenuItems(input: $input) { menuItems { id } userErrors { field code } } }";
        let before = menu(&app, &restaurant).await;
        let category = before["categories"][0].clone();
        let ids: Vec<Value> = category["items"].as_array().unwrap().iter().map(|i| i["id"].clone()).collect();
        assert!(ids.len() > 2);
        let reversed: Vec<Value> = ids.iter().rev().cloned().collect();
        let done = run(&app, Some(&owner), query, json!({ "categoryId": category["id"], "menuItemIds": reversed })).await;
        let done = done.data()["reorderMenuItems"].clone();
        assert_eq!(done["userErrors"], json!([]));
        assert_eq!(done["menuItems"].as_array().unwrap().iter().map(|i| i["id"].clone()).collect::<Vec<_>>(), reversed);
        let shown: Vec<Value> = menu(&app, &restaurant).await["categories"][0]["items"].as_array().unwrap().iter().map(|i| i["id"].clone()).collect();
        assert_eq!(shown, reversed);
        let foreign = before["categories"][1]["items"][0]["id"].clone();
        for wrong in [json!(reversed[1..]), json!([reversed.clone(), vec![foreign]].concat()), json!([reversed.clone(), vec![reversed[0].clone()]].concat())] {
            let refused = run(&app, Some(&owner), query, json!({ "categoryId": category["id"], "menuItemIds": wrong })).await;
            assert_eq!(refused.data()["reorderMenuItems"]["userErrors"], json!([{ "field": ["input", "menuItemIds"], "code": "INVALID" }]), "{wrong}");
        }
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let refused = run(&app, Some(&customer), query, json!({ "categoryId": category["id"], "menuItemIds": ids })).await;
        assert_eq!(refused.error_code(), "FORBIDDEN");
        let shown: Vec<Value> = menu(&app, &restaurant).await["categories"][0]["items"].as_array().unwrap().iter().map(|i| i["id"].clone()).collect();
        assert_eq!(shown, reversed, "refused calls changed nothing");
    }
}
