//! The checkout screen: `quoteOrder` prices a cart with `placeOrder`'s own code, and the
//! delivery area agrees between browsing (`deliversTo`) and ordering.

use dishpatch::{
    graphql::relay::{GlobalId, NodeKind},
    seed,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, db_test},
    orders::{available, order_input, place, roma_items},
};

const QUOTE: &str = "query($input: QuoteOrderInput!) { quoteOrder(input: $input) {
    quote { lines { menuItem { id name } name quantity unitPrice { amount } lineTotal { amount } note }
            subtotal { amount currency } deliveryFee { amount } total { amount } }
    userErrors { field message code } } }";

/// `quoteOrder` for `input` (a `placeOrder` input; the key and address are dropped) as `who`.
async fn quote(app: &TestApp, who: Option<&str>, input: &Value) -> Value {
    let mut cart = input.clone();
    let cart = cart.as_object_mut().unwrap();
    cart.remove("idempotencyKey");
    cart.remove("deliveryAddress");
    app.graphql_as(who, QUOTE, json!({ "input": cart }))
        .await
        .data()["quoteOrder"]
        .clone()
}

/// Munich: far outside every demo restaurant's area.
const FAR_AWAY: (f64, f64) = (48.137, 11.575);

db_test! {
    /// A quote shows exactly what the order then costs, and refuses what placing would refuse
    /// with the same code and field; it writes nothing and needs no sign-in.
    async fn a_quote_is_what_the_order_then_costs_and_refuses_what_it_would_refuse(app) {
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let mut input = order_input(&restaurant, &available(&items, 3), "quoted");
        input["lines"][1]["note"] = json!("no onions");
        let orders_before = entities::order::Entity::find().count(&app.db).await.unwrap();
        let anonymous = quote(&app, None, &input).await;
        assert_eq!(anonymous["userErrors"], json!([]));
        assert_eq!(quote(&app, Some(&customer), &input).await, anonymous);
        assert_eq!(entities::order::Entity::find().count(&app.db).await.unwrap(), orders_before, "a quote writes nothing");
        let quoted = &anonymous["quote"];
        let placed = place(&app, &customer, input.clone()).await;
        let order = &placed["order"];
        for money in ["subtotal", "deliveryFee", "total"] {
            assert_eq!(quoted[money]["amount"], order[money]["amount"], "{money}");
        }
        let lines: Vec<Value> = quoted["lines"].as_array().unwrap().iter()
            .map(|l| json!({ "name": l["name"], "quantity": l["quantity"], "unitPrice": l["unitPrice"], "lineTotal": l["lineTotal"] }))
            .collect();
        assert_eq!(Value::from(lines), order["lines"]);
        assert_eq!(quoted["lines"][1]["note"], "no onions");
        assert_eq!(quoted["lines"][0]["menuItem"]["id"], input["lines"][0]["menuItemId"]);

        // Every refusal placeOrder gives, the quote gives the same way.
        let mut refusals = Vec::new();
        let mut zero = input.clone();
        zero["lines"][0]["quantity"] = json!(0);
        refusals.push(zero);
        let foreign = app.graphql("{ restaurant(slug: \"sakura-sushi\") { menu { items { id } } } }", json!({})).await;
        let foreign = foreign.data()["restaurant"]["menu"]["items"][0]["id"].as_str().unwrap().to_owned();
        refusals.push(order_input(&restaurant, &[foreign], "q-foreign"));
        if let Some((sold_out, _, _)) = items.iter().find(|(_, ok, _)| !ok) {
            refusals.push(order_input(&restaurant, std::slice::from_ref(sold_out), "q-sold"));
        }
        let closed_id = entities::restaurant::Entity::find()
            .filter(entities::restaurant::Column::IsOpen.eq(false))
            .one(&app.db).await.unwrap().expect("the demo has a closed restaurant").id;
        let closed = GlobalId::encode(NodeKind::Restaurant, closed_id);
        let closed_items = app.graphql("query($id: ID!) { restaurant(id: $id) { menu { items { id } } } }", json!({ "id": closed })).await;
        let closed_item = closed_items.data()["restaurant"]["menu"]["items"][0]["id"].as_str().unwrap().to_owned();
        refusals.push(order_input(closed.as_str(), &[closed_item], "q-closed"));
        let mut far = input.clone();
        far["deliveryLocation"] = json!({ "latitude": FAR_AWAY.0, "longitude": FAR_AWAY.1 });
        far["idempotencyKey"] = json!("q-far");
        refusals.push(far);
        let mut codes = Vec::new();
        for (n, refused) in refusals.iter().enumerate() {
            let mut refused = refused.clone();
            refused["idempotencyKey"] = json!(format!("refused-{n}"));
            let quoted = quote(&app, Some(&customer), &refused).await;
            let placed = place(&app, &customer, refused.clone()).await;
            assert_eq!(quoted["quote"], Value::Null);
            assert!(!quoted["userErrors"].as_array().unwrap().is_empty());
            assert_eq!(quoted["userErrors"], placed["userErrors"], "{refused}");
            codes.push(quoted["userErrors"][0]["code"].as_str().unwrap().to_owned());
        }
        assert!(codes.contains(&"OUTSIDE_DELIVERY_AREA".to_owned()), "{codes:?}");
        assert!(codes.contains(&"RESTAURANT_CLOSED".to_owned()));
        assert!(codes.contains(&"ITEM_NOT_FOUND".to_owned()));
        let mut nowhere = input.clone();
        nowhere.as_object_mut().unwrap().remove("deliveryLocation");
        let nowhere = quote(&app, None, &nowhere).await;
        assert_eq!(nowhere["userErrors"][0]["field"], json!(["input", "deliveryLocation"]));
        let far = quote(&app, None, &refusals.last().unwrap().clone()).await;
        assert_eq!(far["userErrors"][0]["field"], json!(["input", "deliveryLocation"]));
        assert!(far["userErrors"][0]["message"].as_str().unwrap().contains("delivers within 15.0 km"), "{far}");
    }
}

db_test! {
    /// Browsing with `deliversTo` lists exactly the restaurants an order to that point could
    /// be placed with, at every distance, including a restaurant with a small area.
    async fn browsing_and_ordering_agree_on_the_delivery_area(app) {
        // Trattoria Roma now delivers within 2 km only.
        let (restaurant, _) = roma_items(&app).await;
        let roma_id = crate::helpers::decode_id(&json!(restaurant));
        entities::restaurant::Entity::update_many()
            .col_expr(entities::restaurant::Column::DeliveryRadiusM, Expr::value(2_000))
            .filter(entities::restaurant::Column::Id.eq(roma_id))
            .exec(&app.db)
            .await
            .unwrap();
        let roma = entities::restaurant::Entity::find_by_id(roma_id).one(&app.db).await.unwrap().unwrap();
        let listed = |point: (f64, f64)| {
            let app = &app;
            async move {
                let response = app.graphql(
                    "query($p: GeoPointInput!) { restaurants(first: 100, filter: { deliversTo: $p }) { totalCount edges { node { id deliveryRadiusMeters } } } }",
                    json!({ "p": { "latitude": point.0, "longitude": point.1 } }),
                ).await;
                response.data()["restaurants"].clone()
            }
        };
        assert_eq!(listed(FAR_AWAY).await["totalCount"], 0);
        let all = app.graphql("{ restaurants(first: 100) { totalCount } }", json!({})).await;
        let near_roma = listed((roma.latitude, roma.longitude)).await;
        assert_eq!(near_roma["totalCount"], all.data()["restaurants"]["totalCount"], "everyone delivers to Roma's door");
        // Walking away from Roma northwards: in the list exactly while quotes are accepted.
        let items = app.graphql("query($id: ID!) { node(id: $id) { ... on Restaurant { menu { items { id available } } } } }", json!({ "id": restaurant })).await;
        let item = items.data()["node"]["menu"]["items"].as_array().unwrap().iter().find(|i| i["available"] == true).unwrap()["id"].as_str().unwrap().to_owned();
        let mut seen = (false, false);
        for step in 0..40 {
            let latitude = roma.latitude + f64::from(step) * 0.001; // about 111 m a step
            let point = (latitude, roma.longitude);
            let in_list = listed(point).await["edges"].as_array().unwrap().iter().any(|e| e["node"]["id"] == restaurant.as_str());
            let mut input = order_input(&restaurant, std::slice::from_ref(&item), "area");
            input["deliveryLocation"] = json!({ "latitude": point.0, "longitude": point.1 });
            let quoted = quote(&app, None, &input).await;
            let accepted = quoted["userErrors"] == json!([]);
            assert_eq!(in_list, accepted, "{step}: {quoted}");
            if !accepted {
                assert_eq!(quoted["userErrors"][0]["code"], "OUTSIDE_DELIVERY_AREA");
            }
            seen = (seen.0 || in_list, seen.1 || !in_list);
        }
        assert_eq!(seen, (true, true), "the walk crossed the edge of the area");
        let radius = app.graphql("query($id: ID!) { node(id: $id) { ... on Restaurant { deliveryRadiusMeters } } }", json!({ "id": restaurant })).await;
        assert_eq!(radius.data()["node"]["deliveryRadiusMeters"], 2000);
    }
}
