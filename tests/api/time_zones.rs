//! Opening hours are local to each restaurant's IANA time zone, the same way in `openNow`, the
//! `openNow` filter and `placeOrder`.

use chrono::{Datelike, Offset, Timelike, Utc};
use dishpatch::{graphql::relay::GlobalId, seed};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::json;

use crate::{
    helpers::db_test,
    orders::{order_input, roma_items},
};

/// The minute of the week on the clocks of `zone` now, as a restaurant there reads its hours.
fn local_minute(zone: chrono_tz::Tz) -> i32 {
    let local = Utc::now().with_timezone(&zone);
    (local.weekday().num_days_from_monday() * 1440 + local.hour() * 60 + local.minute()) as i32
}

db_test! {
    /// Two restaurants with the same hours, two hours around the current time in Auckland: the
    /// one in Auckland is open, the one in New York (hours away) is closed, whichever view asks.
    async fn hours_are_read_in_the_restaurants_own_time_zone(app) {
        let (roma, items) = roma_items(&app).await;
        let roma_id = crate::helpers::decode_id(&json!(roma));
        let other_id = roma_id + 1;
        let auckland: chrono_tz::Tz = "Pacific/Auckland".parse().unwrap();
        let now = local_minute(auckland);
        // Within the week (a stored period does not wrap): New York's clock, 18 hours behind,
        // is outside it whatever the time.
        let (from, until) = ((now - 60).max(0), (now + 60).min(7 * 1440));
        for (id, zone) in [(roma_id, "Pacific/Auckland"), (other_id, "America/New_York")] {
            // A stale offset on purpose: the server computes the zone's own.
            entities::restaurant::Entity::update_many()
                .col_expr(entities::restaurant::Column::TimeZone, Expr::value(zone))
                .col_expr(entities::restaurant::Column::UtcOffsetMinutes, Expr::value(0))
                .col_expr(entities::restaurant::Column::IsOpen, Expr::value(true))
                .filter(entities::restaurant::Column::Id.eq(id))
                .exec(&app.db).await.unwrap();
            entities::opening_hours::Entity::delete_many()
                .filter(entities::opening_hours::Column::RestaurantId.eq(id))
                .exec(&app.db).await.unwrap();
            entities::opening_hours::Entity::insert(entities::opening_hours::ActiveModel {
                restaurant_id: Set(id),
                opens_at: Set(from),
                closes_at: Set(until),
            }).exec(&app.db).await.unwrap();
        }
        // A replica starting now learns the new zones (and sets their current offsets over
        // the stale ones); both servers answer the same.
        let (replica, replica_app) = app.another_instance().await;
        tokio::spawn(replica_app.run_until_stopped());
        let other = GlobalId::encode(dishpatch::graphql::relay::NodeKind::Restaurant, other_id);
        let query = "query($a: ID!, $b: ID!) {
            a: node(id: $a) { ... on Restaurant { openNow timeZone utcOffsetMinutes } }
            b: node(id: $b) { ... on Restaurant { openNow timeZone } }
            open: restaurants(first: 100, filter: { openNow: true }) { edges { node { id } } } }";
        for address in [app.address.clone(), replica] {
            let body: serde_json::Value = app.client.post(format!("{address}/graphql"))
                .json(&json!({ "query": query, "variables": { "a": roma, "b": other } }))
                .send().await.unwrap().json().await.unwrap();
            let data = &body["data"];
            assert_eq!(data["a"]["openNow"], true, "{body}");
            assert_eq!(data["a"]["timeZone"], "Pacific/Auckland");
            let expected = Utc::now().with_timezone(&auckland).offset().fix().local_minus_utc() / 60;
            assert_eq!(data["a"]["utcOffsetMinutes"], expected);
            assert_eq!(data["b"]["openNow"], false, "{body}");
            let open: Vec<&str> = data["open"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["id"].as_str().unwrap()).collect();
            assert!(open.contains(&roma.as_str()), "the filter agrees: {address}");
            assert!(!open.contains(&other.as_str()), "the filter agrees: {address}");
        }
        // placeOrder agrees.
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let item = items.iter().find(|(_, ok, _)| *ok).unwrap().0.clone();
        let quote = "query($input: QuoteOrderInput!) { quoteOrder(input: $input) { userErrors { code } } }";
        let mut input = order_input(&roma, std::slice::from_ref(&item), "tz");
        for key in ["idempotencyKey", "deliveryAddress"] {
            input.as_object_mut().unwrap().remove(key);
        }
        let open = app.graphql_as(Some(&customer), quote, json!({ "input": input })).await;
        assert_eq!(open.data()["quoteOrder"]["userErrors"], json!([]));
        let other_items = app.graphql("query($id: ID!) { node(id: $id) { ... on Restaurant { menu { items { id } } } } }", json!({ "id": other })).await;
        let other_item = other_items.data()["node"]["menu"]["items"][0]["id"].as_str().unwrap().to_owned();
        input["restaurantId"] = json!(other);
        input["lines"][0]["menuItemId"] = json!(other_item);
        let closed = app.graphql_as(Some(&customer), quote, json!({ "input": input })).await;
        assert_eq!(closed.data()["quoteOrder"]["userErrors"][0]["code"], "RESTAURANT_CLOSED");
    }
}
