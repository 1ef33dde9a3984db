//! Saved addresses: kept per customer, chosen by id at checkout, copied into the order.

use dishpatch::seed;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, db_test},
    orders::{available, order_input, roma_items},
};

const CREATE: &str = "mutation($input: CreateAddressInput!) { createAddress(input: $input) {
    address { id label formatted courierNotes location { latitude longitude } } userErrors { field code } } }";
const PLACE: &str = "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
    order { id deliveryAddress deliveryNotes deliveryLocation { latitude longitude } total { amount } } replayed userErrors { field code } } }";

fn home() -> Value {
    json!({ "label": "Home", "street": "Torstrasse", "houseNumber": "12b", "postalCode": "10119", "city": "Berlin",
            "courierNotes": "3rd floor, ring twice", "location": { "latitude": 52.529, "longitude": 13.401 } })
}

async fn save(app: &TestApp, who: &str, input: Value) -> Value {
    app.graphql_as(Some(who), CREATE, json!({ "input": input }))
        .await
        .data()["createAddress"]
        .clone()
}

/// A placeOrder input at Trattoria Roma for the saved address `address`.
async fn to_saved(app: &TestApp, address: &Value, key: &str) -> Value {
    let (restaurant, items) = roma_items(app).await;
    let mut input = order_input(&restaurant, &available(&items, 1), key);
    let object = input.as_object_mut().unwrap();
    object.remove("deliveryAddress");
    object.remove("deliveryLocation");
    object.insert("addressId".into(), address.clone());
    input
}

db_test! {
    /// An order placed with a saved address copies it (text, location, courier notes), and
    /// keeps the copy when the address changes or goes; a retry still replays.
    async fn orders_copy_the_saved_address_they_were_placed_with(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let saved = save(&app, &customer, home()).await;
        assert_eq!(saved["userErrors"], json!([]));
        let address = saved["address"]["id"].clone();
        assert_eq!(saved["address"]["formatted"], "Torstrasse 12b, 10119 Berlin");
        let listed = app.graphql_as(Some(&customer), "{ viewer { addresses { id label } } }", json!({})).await;
        assert_eq!(listed.data()["viewer"]["addresses"], json!([{ "id": address, "label": "Home" }]));

        let input = to_saved(&app, &address, "saved-1").await;
        let quote = app.graphql_as(Some(&customer), "query($input: QuoteOrderInput!) { quoteOrder(input: $input) { quote { total { amount } } userErrors { code } } }",
            json!({ "input": { "restaurantId": input["restaurantId"], "lines": input["lines"], "addressId": address } })).await;
        let placed = app.graphql_as(Some(&customer), PLACE, json!({ "input": input })).await;
        let placed = placed.data()["placeOrder"].clone();
        assert_eq!(placed["userErrors"], json!([]));
        assert_eq!(quote.data()["quoteOrder"]["quote"]["total"], placed["order"]["total"]);
        let order = placed["order"].clone();
        assert_eq!(order["deliveryAddress"], "Torstrasse 12b, 10119 Berlin");
        assert_eq!(order["deliveryNotes"], "3rd floor, ring twice");
        assert_eq!(order["deliveryLocation"], json!({ "latitude": 52.529, "longitude": 13.401 }));

        // The address changes, then goes: the order keeps its copy; a retry is a replay.
        let moved = app.graphql_as(Some(&customer), "mutation($input: UpdateAddressInput!) { updateAddress(input: $input) { address { formatted courierNotes } userErrors { code } } }",
            json!({ "input": { "id": address, "street": "Invalidenstrasse", "courierNotes": "" } })).await;
        assert_eq!(moved.data()["updateAddress"]["address"], json!({ "formatted": "Invalidenstrasse 12b, 10119 Berlin", "courierNotes": null }));
        let retried = app.graphql_as(Some(&customer), PLACE, json!({ "input": input })).await;
        let retried = retried.data()["placeOrder"].clone();
        assert_eq!((retried["replayed"].clone(), retried["order"]["id"].clone()), (json!(true), order["id"].clone()));
        let deleted = app.graphql_as(Some(&customer), "mutation($id: ID!) { deleteAddress(input: { id: $id }) { deletedId userErrors { code } } }", json!({ "id": address })).await;
        assert_eq!(deleted.data()["deleteAddress"]["deletedId"], address);
        let kept = app.graphql_as(Some(&customer), "query($id: ID!) { order(id: $id) { deliveryAddress deliveryNotes } }", json!({ "id": order["id"] })).await;
        assert_eq!(kept.data()["order"], json!({ "deliveryAddress": "Torstrasse 12b, 10119 Berlin", "deliveryNotes": "3rd floor, ring twice" }));
        // A deleted address cannot be ordered to.
        let gone = app.graphql_as(Some(&customer), PLACE, json!({ "input": to_saved(&app, &address, "saved-2").await })).await;
        assert_eq!(gone.data()["placeOrder"]["userErrors"], json!([{ "field": ["input", "addressId"], "code": "NOT_FOUND" }]));
    }
}

db_test! {
    /// Bad addresses and bad choices are user errors that change nothing; other people's
    /// addresses do not exist for a customer.
    async fn addresses_are_checked_and_private(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let saved = save(&app, &customer, home()).await;
        let address = saved["address"]["id"].clone();
        for (field, value, path) in [
            ("label", json!(""), json!(["input", "label"])),
            ("street", json!("x".repeat(201)), json!(["input", "street"])),
            ("location", json!({ "latitude": 91.0, "longitude": 0.0 }), json!(["input", "location"])),
        ] {
            let mut bad = home();
            bad[field] = value;
            let refused = save(&app, &customer, bad).await;
            assert_eq!(refused["userErrors"], json!([{ "field": path, "code": "INVALID" }]), "{field}");
        }
        // Saved and typed at once, or neither.
        let mut both = to_saved(&app, &address, "both").await;
        both["deliveryAddress"] = json!("Torstrasse 1");
        let refused = app.graphql_as(Some(&customer), PLACE, json!({ "input": both })).await;
        assert_eq!(refused.data()["placeOrder"]["userErrors"], json!([{ "field": ["input", "addressId"], "code": "INVALID" }]));
        let mut neither = to_saved(&app, &address, "neither").await;
        neither.as_object_mut().unwrap().remove("addressId");
        let refused = app.graphql_as(Some(&customer), PLACE, json!({ "input": neither })).await;
        assert_eq!(refused.data()["placeOrder"]["userErrors"], json!([{ "field": ["input", "deliveryAddress"], "code": "INVALID" }]));

        // Another customer: cannot read, change, delete or order to it.
        let other = entities::user::Entity::find()
            .filter(entities::user::Column::Email.like("user%@example.test"))
            .one(&app.db).await.unwrap().unwrap().email.unwrap();
        let other = app.bearer(&other).await;
        let node = app.graphql_as(Some(&other), "query($id: ID!) { node(id: $id) { id } }", json!({ "id": address })).await;
        assert_eq!(node.data()["node"], Value::Null);
        let changed = app.graphql_as(Some(&other), "mutation($id: ID!) { updateAddress(input: { id: $id, label: \"Mine\" }) { userErrors { field code } } }", json!({ "id": address })).await;
        assert_eq!(changed.data()["updateAddress"]["userErrors"], json!([{ "field": ["input", "id"], "code": "NOT_FOUND" }]));
        let deleted = app.graphql_as(Some(&other), "mutation($id: ID!) { deleteAddress(input: { id: $id }) { userErrors { code } } }", json!({ "id": address })).await;
        assert_eq!(deleted.data()["deleteAddress"]["userErrors"][0]["code"], "NOT_FOUND");
        let ordered = app.graphql_as(Some(&other), PLACE, json!({ "input": to_saved(&app, &address, "theirs").await })).await;
        assert_eq!(ordered.data()["placeOrder"]["userErrors"], json!([{ "field": ["input", "addressId"], "code": "NOT_FOUND" }]));
        let owner_id = app.user_id(seed::DEMO_CUSTOMER).await;
        let theirs = app.graphql_as(Some(&other), "query($id: ID!) { node(id: $id) { ... on User { addresses { id } } } }",
            json!({ "id": dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, owner_id).0 })).await;
        assert_eq!(theirs.error_code(), "FORBIDDEN");
        assert_eq!(app.graphql(CREATE, json!({ "input": home() })).await.error_code(), "UNAUTHENTICATED");
        // Still the owner's, unchanged.
        let mine = app.graphql_as(Some(&customer), "query($id: ID!) { node(id: $id) { ... on Address { label } } }", json!({ "id": address })).await;
        assert_eq!(mine.data()["node"]["label"], "Home");

        // At most twenty.
        for _ in 1..20 {
            assert_eq!(save(&app, &customer, home()).await["userErrors"], json!([]));
        }
        assert_eq!(save(&app, &customer, home()).await["userErrors"][0]["code"], "LIMIT_REACHED");
    }
}
