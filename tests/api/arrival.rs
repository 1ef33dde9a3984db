//! When will it arrive: `Order.estimatedReadyAt` and `estimatedDeliveryAt` as the order moves,
//! in queries and in live updates.

use chrono::{DateTime, Duration, Utc};
use dishpatch::seed;
use serde_json::{Value, json};

use crate::{
    helpers::db_test,
    live::{follow, next},
    orders::{act, available, order_input, place, roma_items},
};

const ESTIMATES: &str =
    "query($id: ID!) { order(id: $id) { status createdAt estimatedReadyAt estimatedDeliveryAt
    restaurant { preparationMinutes } events { toStatus createdAt } } }";

fn at(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}")))
        .unwrap()
        .with_timezone(&Utc)
}

db_test! {
    /// The estimates follow the order: preparation time after acceptance, the ride from the
    /// restaurant, then from the courier's position; actual times once things happened;
    /// none once cancelled. Live updates carry them.
    async fn arrival_estimates_follow_the_order(app) {
        let (restaurant, items) = roma_items(&app).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let courier = app.bearer(seed::DEMO_COURIER).await;
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "eta")).await;
        let id = placed["order"]["id"].as_str().unwrap().to_owned();
        let read = || async { app.graphql_as(Some(&customer), ESTIMATES, json!({ "id": id })).await.data()["order"].clone() };

        let mut live = follow(&app, &customer, "o", "subscription($id: ID!) { orderUpdated(orderId: $id) { status estimatedReadyAt estimatedDeliveryAt } }", json!({ "id": id })).await;
        let placed_view = read().await;
        let prep = Duration::minutes(placed_view["restaurant"]["preparationMinutes"].as_i64().unwrap());
        assert_eq!(prep, Duration::minutes(20));
        let ready = at(&placed_view["estimatedReadyAt"]);
        let created = at(&placed_view["createdAt"]);
        assert!((ready - (created + prep)).num_seconds().abs() <= 1, "{placed_view}");
        let first_arrival = at(&placed_view["estimatedDeliveryAt"]);
        // Torstrasse is a few km from Trattoria Roma: a ride of minutes, not hours.
        let ride = first_arrival - ready;
        assert!(ride > Duration::zero() && ride < Duration::hours(1), "{ride}");

        assert_eq!(act(&app, &owner, "acceptOrder", json!({ "orderId": id })).await["userErrors"], json!([]));
        let accepted = next(&mut live, "orderUpdated").await;
        assert_eq!(accepted["status"], "ACCEPTED");
        assert!(at(&accepted["estimatedReadyAt"]) >= ready, "counted from the acceptance: {accepted}");
        assert!(at(&accepted["estimatedDeliveryAt"]) > at(&accepted["estimatedReadyAt"]));

        for mutation in ["startPreparingOrder", "markOrderReady"] {
            assert_eq!(act(&app, &owner, mutation, json!({ "orderId": id })).await["userErrors"], json!([]));
            next(&mut live, "orderUpdated").await;
        }
        let ready_view = read().await;
        let ready_event = ready_view["events"].as_array().unwrap().iter().find(|e| e["toStatus"] == "READY_FOR_PICKUP").unwrap();
        assert_eq!(at(&ready_view["estimatedReadyAt"]), at(&ready_event["createdAt"]), "the actual time once ready");
        assert!(at(&ready_view["estimatedDeliveryAt"]) >= Utc::now() - Duration::seconds(5));

        act(&app, &courier, "claimDelivery", json!({ "orderId": id })).await;
        act(&app, &courier, "confirmPickup", json!({ "orderId": id })).await;
        next(&mut live, "orderUpdated").await;
        let picked = next(&mut live, "orderUpdated").await;
        assert_eq!(picked["status"], "PICKED_UP");
        let from_pickup = at(&picked["estimatedDeliveryAt"]);
        // The courier reports a position right at the drop-off: the estimate comes to now.
        let moved = app.graphql_as(Some(&courier), "mutation($input: CourierLocationInput!) { updateCourierLocation(input: $input) { userErrors { code } } }",
            json!({ "input": { "orderId": id, "location": { "latitude": 52.53, "longitude": 13.40 } } })).await;
        assert_eq!(moved.data()["updateCourierLocation"]["userErrors"], json!([]), "{:#}", moved.body);
        let near = read().await;
        let closer = at(&near["estimatedDeliveryAt"]);
        assert!(closer < from_pickup, "{closer} !< {from_pickup}");
        assert!((closer - Utc::now()).num_seconds().abs() <= 5, "{closer}");

        act(&app, &courier, "confirmDelivery", json!({ "orderId": id })).await;
        let done = read().await;
        let delivered = done["events"].as_array().unwrap().iter().find(|e| e["toStatus"] == "DELIVERED").unwrap();
        assert_eq!(at(&done["estimatedDeliveryAt"]), at(&delivered["createdAt"]));

        // A cancelled order has no estimates.
        let other = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "eta-cancel")).await;
        let other = other["order"]["id"].as_str().unwrap().to_owned();
        act(&app, &customer, "cancelOrder", json!({ "orderId": other })).await;
        let cancelled = app.graphql_as(Some(&customer), ESTIMATES, json!({ "id": other })).await;
        assert_eq!(cancelled.data()["order"]["estimatedReadyAt"], Value::Null);
        assert_eq!(cancelled.data()["order"]["estimatedDeliveryAt"], Value::Null);
    }
}
