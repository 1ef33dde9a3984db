//! A restaurant runs itself: its owner edits its settings, its staff pause orders on a busy
//! night, and ordering follows at once.

use chrono::{Duration, Utc};
use dishpatch::{
    graphql::relay::{GlobalId, NodeKind},
    seed,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, db_test},
    orders::{available, order_input, place, roma_items},
};

const UPDATE: &str = "mutation($input: UpdateRestaurantInput!) { updateRestaurant(input: $input) {
    restaurant { name minimumOrder { amount } deliveryFee { amount } preparationMinutes deliveryRadiusMeters timeZone openNow
                 openingHours { day opens closes closesNextDay } }
    userErrors { field code message } } }";
const PAUSE: &str = "mutation($input: PauseOrdersInput!) { pauseOrders(input: $input) { restaurant { pausedUntil openNow } userErrors { field code } } }";
const RESUME: &str = "mutation($input: ResumeOrdersInput!) { resumeOrders(input: $input) { restaurant { pausedUntil openNow } userErrors { code } } }";

const SETTINGS: &str = "mutation($input: UpdateRestaurantInput!) { updateRestaurant(input: $input) {
    restaurant { phone cuisines openNow closures { startsOn endsOn reason } } userErrors { field code } } }";

/// Every day around the clock, as `updateRestaurant` takes it.
fn always_open() -> Value {
    json!(
        [
            "MONDAY",
            "TUESDAY",
            "WEDNESDAY",
            "THURSDAY",
            "FRIDAY",
            "SATURDAY",
            "SUNDAY"
        ]
        .iter()
        .map(|day| json!({ "day": day, "opens": "00:00", "closes": "00:00" }))
        .collect::<Vec<_>>()
    )
}

/// A customer (no restaurant of their own) made staff of `restaurant` by an admin; their
/// authorization header.
pub(crate) async fn staff_of(app: &TestApp, restaurant: &str) -> String {
    let worker = entities::user::Entity::find()
        .filter(entities::user::Column::Email.like("user%@example.test"))
        .order_by_desc(entities::user::Column::Id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let admin = app.bearer(seed::DEMO_ADMIN).await;
    let added = app.graphql_as(Some(&admin), "mutation($input: StaffInput!) { addRestaurantStaff(input: $input) { userErrors { code } } }",
        json!({ "input": { "restaurantId": restaurant, "userId": GlobalId::encode(NodeKind::User, worker.id) } })).await;
    assert_eq!(added.data()["addRestaurantStaff"]["userErrors"], json!([]));
    format!(
        "Bearer {}",
        app.tokens.issue(worker.id, None, None, Utc::now())
    )
}

db_test! {
    /// The owner sets a minimum order, fees, preparation time, time zone and hours; quotes and
    /// orders follow; bad values change nothing.
    async fn owners_edit_their_restaurant(app) {
        let (restaurant, items) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let changed = app.graphql_as(Some(&owner), UPDATE, json!({ "input": {
            "id": restaurant, "name": "Trattoria Roma Due", "minimumOrder": "25.00", "deliveryFee": "1.5",
            "preparationMinutes": 30, "deliveryRadiusMeters": 8000, "timeZone": "Europe/Rome", "openingHours": always_open() } })).await;
        let changed = changed.data()["updateRestaurant"].clone();
        assert_eq!(changed["userErrors"], json!([]));
        let r = &changed["restaurant"];
        assert_eq!((r["name"].as_str(), r["minimumOrder"]["amount"].as_str(), r["deliveryFee"]["amount"].as_str()), (Some("Trattoria Roma Due"), Some("25.00"), Some("1.50")));
        assert_eq!((r["preparationMinutes"].as_i64(), r["deliveryRadiusMeters"].as_i64(), r["timeZone"].as_str()), (Some(30), Some(8000), Some("Europe/Rome")));
        assert_eq!(r["openingHours"].as_array().unwrap().len(), 7);
        assert_eq!(r["openingHours"][6], json!({ "day": "SUNDAY", "opens": "00:00", "closes": "00:00", "closesNextDay": true }));
        assert_eq!(r["openNow"], true);

        // Below the minimum: refused with what it takes; above it, placed with the new fee.
        let cheap = items.iter().filter(|(_, ok, _)| *ok).min_by_key(|(_, _, price)| price.replace('.', "").parse::<i64>().unwrap()).unwrap().0.clone();
        let refused = place(&app, &app.bearer(seed::DEMO_CUSTOMER).await, order_input(&restaurant, &[cheap], "min-1")).await;
        assert_eq!(refused["userErrors"][0]["code"], "BELOW_MINIMUM_ORDER");
        assert_eq!(refused["userErrors"][0]["field"], json!(["input", "lines"]));
        assert!(refused["userErrors"][0]["message"].as_str().unwrap().contains("25.00 EUR"), "{refused}");
        let mut big = order_input(&restaurant, &available(&items, 3), "min-2");
        for line in big["lines"].as_array_mut().unwrap() {
            line["quantity"] = json!(10);
        }
        let placed = place(&app, &app.bearer(seed::DEMO_CUSTOMER).await, big).await;
        assert_eq!(placed["userErrors"], json!([]));
        assert_eq!(placed["order"]["deliveryFee"]["amount"], "1.50");

        // Bad values: a user error on the field, nothing changed.
        for (input, field) in [
            (json!({ "timeZone": "Mars/Olympus" }), json!(["input", "timeZone"])),
            (json!({ "minimumOrder": "-1" }), json!(["input", "minimumOrder"])),
            (json!({ "deliveryFee": "100.01" }), json!(["input", "deliveryFee"])),
            (json!({ "deliveryRadiusMeters": 50 }), json!(["input", "deliveryRadiusMeters"])),
            (json!({ "preparationMinutes": 0 }), json!(["input", "preparationMinutes"])),
            (json!({ "name": "" }), json!(["input", "name"])),
            (json!({ "openingHours": [{ "day": "MONDAY", "opens": "25:00", "closes": "23:00" }] }), json!(["input", "openingHours", "0", "opens"])),
            (json!({ "openingHours": [{ "day": "MONDAY", "opens": "10:00", "closes": "14:00" }, { "day": "MONDAY", "opens": "13:00", "closes": "15:00" }] }), json!(["input", "openingHours"])),
            (json!({ "name": "Half applied", "timeZone": "Nowhere" }), json!(["input", "timeZone"])),
        ] {
            let mut input = input.clone();
            input["id"] = json!(restaurant);
            let refused = app.graphql_as(Some(&owner), UPDATE, json!({ "input": input })).await;
            assert_eq!(refused.data()["updateRestaurant"]["userErrors"][0]["field"], field, "{input}");
        }
        let now = app.graphql("query($id: ID!) { node(id: $id) { ... on Restaurant { name timeZone openingHours { day } } } }", json!({ "id": restaurant })).await;
        assert_eq!(now.data()["node"]["name"], "Trattoria Roma Due");
        assert_eq!(now.data()["node"]["timeZone"], "Europe/Rome");
        assert_eq!(now.data()["node"]["openingHours"].as_array().unwrap().len(), 7);

        // A week's end crossing: Sunday 22:00 to Monday 02:00 is open at both ends.
        let late = app.graphql_as(Some(&owner), UPDATE, json!({ "input": { "id": restaurant, "openingHours": [{ "day": "SUNDAY", "opens": "22:00", "closes": "02:00" }] } })).await;
        assert_eq!(late.data()["updateRestaurant"]["restaurant"]["openingHours"], json!([
            { "day": "MONDAY", "opens": "00:00", "closes": "02:00", "closesNextDay": false },
            { "day": "SUNDAY", "opens": "22:00", "closes": "00:00", "closesNextDay": true },
        ]));
    }
}

db_test! {
    /// Staff pause orders until a time and resume them; while paused the restaurant is closed
    /// everywhere and placeOrder says until when. Staff cannot edit the settings; strangers
    /// can do neither.
    async fn staff_pause_orders_and_strangers_change_nothing(app) {
        let (restaurant, items) = roma_items(&app).await;
        let staff = staff_of(&app, &restaurant).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let until = Utc::now() + Duration::minutes(90);
        let paused = app.graphql_as(Some(&staff), PAUSE, json!({ "input": { "restaurantId": restaurant, "until": until.to_rfc3339() } })).await;
        let paused = paused.data()["pauseOrders"].clone();
        assert_eq!(paused["userErrors"], json!([]));
        assert_eq!(paused["restaurant"]["openNow"], false);
        assert!(paused["restaurant"]["pausedUntil"].is_string());
        let listed = app.graphql("{ restaurants(first: 100, filter: { openNow: true }) { edges { node { id } } } }", json!({})).await;
        assert!(listed.data()["restaurants"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["id"] != json!(restaurant)));
        let refused = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "paused")).await;
        assert_eq!(refused["userErrors"][0]["code"], "RESTAURANT_PAUSED");
        let local = until.with_timezone(&chrono_tz::Europe::Berlin).format("%H:%M").to_string();
        assert!(refused["userErrors"][0]["message"].as_str().unwrap().contains(&local), "{refused} {local}");
        let past = app.graphql_as(Some(&staff), PAUSE, json!({ "input": { "restaurantId": restaurant, "until": (Utc::now() - Duration::minutes(1)).to_rfc3339() } })).await;
        assert_eq!(past.data()["pauseOrders"]["userErrors"][0]["field"], json!(["input", "until"]));
        let resumed = app.graphql_as(Some(&staff), RESUME, json!({ "input": { "restaurantId": restaurant } })).await;
        assert_eq!(resumed.data()["resumeOrders"]["restaurant"], json!({ "pausedUntil": null, "openNow": true }));
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "resumed")).await;
        assert_eq!(placed["userErrors"], json!([]));

        // Staff cannot change the settings; the other restaurant's owner, a customer and a
        // token without menu:write can do nothing; the owner's menu:write token can.
        let rename = json!({ "input": { "id": restaurant, "name": "Taken over" } });
        assert_eq!(app.graphql_as(Some(&staff), UPDATE, rename.clone()).await.error_code(), "FORBIDDEN");
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let other_owner = format!("Bearer {}", app.tokens.issue(owner_id + 1, None, None, Utc::now()));
        let narrow = format!("Bearer {}", app.tokens.issue(owner_id, Some(&["orders:write".to_owned()]), None, Utc::now()));
        let pause = json!({ "input": { "restaurantId": restaurant, "until": (Utc::now() + Duration::hours(1)).to_rfc3339() } });
        for who in [&other_owner, &customer, &narrow] {
            assert_eq!(app.graphql_as(Some(who), UPDATE, rename.clone()).await.error_code(), "FORBIDDEN");
            assert_eq!(app.graphql_as(Some(who), PAUSE, pause.clone()).await.error_code(), "FORBIDDEN");
            assert_eq!(app.graphql_as(Some(who), RESUME, json!({ "input": { "restaurantId": restaurant } })).await.error_code(), "FORBIDDEN");
        }
        assert_eq!(app.graphql(UPDATE, rename.clone()).await.error_code(), "UNAUTHENTICATED");
        let scoped = format!("Bearer {}", app.tokens.issue(owner_id, Some(&["menu:write".to_owned()]), None, Utc::now()));
        let renamed = app.graphql_as(Some(&scoped), UPDATE, rename).await;
        assert_eq!(renamed.data()["updateRestaurant"]["restaurant"]["name"], "Taken over");
        let shown = app.graphql("query($id: ID!) { node(id: $id) { ... on Restaurant { pausedUntil openNow } } }", json!({ "id": restaurant })).await;
        assert_eq!(shown.data()["node"], json!({ "pausedUntil": null, "openNow": true }), "the refused pauses changed nothing");
    }
}

const CREATE: &str = "mutation($input: CreateRestaurantInput!) { createRestaurant(input: $input) {
    restaurant { id slug name timeZone openNow } userErrors { field code } } }";
const STAFF: &str = "mutation($input: StaffInput!) { addRestaurantStaff(input: $input) { userErrors { field code } } }";
const UNSTAFF: &str = "mutation($input: StaffInput!) { removeRestaurantStaff(input: $input) { userErrors { field code } } }";

db_test! {
    /// An admin onboards a restaurant for a new owner, who sets its hours and menu and then
    /// takes orders, manages its staff and renames its slug; nobody else can.
    async fn a_new_restaurant_is_onboarded_and_run_by_its_owner(app) {
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let newcomer = entities::user::Entity::find()
            .filter(entities::user::Column::Email.like("user%@example.test"))
            .order_by_desc(entities::user::Column::Id)
            .one(&app.db).await.unwrap().unwrap();
        let helper_id = newcomer.id - 1;
        let owner_gid = GlobalId::encode(NodeKind::User, newcomer.id);
        let input = json!({ "name": "Pho Corner", "slug": "pho-corner", "ownerId": owner_gid, "address": "Kastanienallee 5, Berlin",
            "location": { "latitude": 52.538, "longitude": 13.410 }, "timeZone": "Europe/Berlin" });
        let created = app.graphql_as(Some(&admin), CREATE, json!({ "input": input })).await;
        let created = created.data()["createRestaurant"].clone();
        assert_eq!(created["userErrors"], json!([]));
        let restaurant = created["restaurant"]["id"].as_str().unwrap().to_owned();
        assert_eq!(created["restaurant"]["openNow"], false, "no hours yet");
        let again = app.graphql_as(Some(&admin), CREATE, json!({ "input": input })).await;
        assert_eq!(again.data()["createRestaurant"]["userErrors"], json!([{ "field": ["input", "slug"], "code": "CONFLICT" }]));
        let mut bad = input.clone();
        bad["slug"] = json!("Pho Corner!");
        let refused = app.graphql_as(Some(&admin), CREATE, json!({ "input": bad })).await;
        assert_eq!(refused.data()["createRestaurant"]["userErrors"][0]["code"], "INVALID");
        for who in [app.bearer(seed::DEMO_OWNER).await, app.bearer(seed::DEMO_CUSTOMER).await] {
            assert_eq!(app.graphql_as(Some(&who), CREATE, json!({ "input": input })).await.error_code(), "FORBIDDEN");
        }

        // The owner sees where they work, sets hours and a menu: orders come in.
        let owner = format!("Bearer {}", app.tokens.issue(newcomer.id, None, None, Utc::now()));
        let workplaces = app.graphql_as(Some(&owner), "{ viewer { restaurants { role restaurant { slug } } } }", json!({})).await;
        assert!(workplaces.data()["viewer"]["restaurants"].as_array().unwrap().contains(&json!({ "role": "OWNER", "restaurant": { "slug": "pho-corner" } })));
        let hours = app.graphql_as(Some(&owner), UPDATE, json!({ "input": { "id": restaurant, "openingHours": always_open(), "deliveryFee": "2.00" } })).await;
        assert_eq!(hours.data()["updateRestaurant"]["restaurant"]["openNow"], true);
        let category = app.graphql_as(Some(&owner), "mutation($r: ID!) { createMenuCategory(input: { restaurantId: $r, name: \"Soups\" }) { category { id } } }", json!({ "r": restaurant })).await;
        let category = category.data()["createMenuCategory"]["category"]["id"].clone();
        let item = app.graphql_as(Some(&owner), "mutation($c: ID!) { createMenuItem(input: { categoryId: $c, name: \"Pho bo\", price: \"12.90\" }) { menuItem { id } } }", json!({ "c": category })).await;
        let item = item.data()["createMenuItem"]["menuItem"]["id"].as_str().unwrap().to_owned();
        let placed = place(&app, &app.bearer(seed::DEMO_CUSTOMER).await, order_input(&restaurant, &[item], "pho-1")).await;
        assert_eq!(placed["userErrors"], json!([]));
        assert_eq!(placed["order"]["total"]["amount"], "14.90");

        // Staff: the owner adds and removes them; staff and other owners cannot.
        let helper_global_id = GlobalId::encode(NodeKind::User, helper_id);
        let membership = json!({ "input": { "restaurantId": restaurant, "userId": helper_global_id } });
        assert_eq!(app.graphql_as(Some(&owner), STAFF, membership.clone()).await.data()["addRestaurantStaff"]["userErrors"], json!([]));
        let helper = format!("Bearer {}", app.tokens.issue(helper_id, None, None, Utc::now()));
        let pause = json!({ "input": { "restaurantId": restaurant, "until": (Utc::now() + Duration::minutes(30)).to_rfc3339() } });
        assert_eq!(app.graphql_as(Some(&helper), PAUSE, pause.clone()).await.data()["pauseOrders"]["userErrors"], json!([]));
        let third = json!({ "input": { "restaurantId": restaurant, "userId": GlobalId::encode(NodeKind::User, helper_id - 1) } });
        assert_eq!(app.graphql_as(Some(&helper), STAFF, third.clone()).await.error_code(), "FORBIDDEN", "staff do not manage staff");
        assert_eq!(app.graphql_as(Some(&app.bearer(seed::DEMO_OWNER).await), STAFF, third).await.error_code(), "FORBIDDEN", "another restaurant's owner");
        let self_removal = json!({ "input": { "restaurantId": restaurant, "userId": owner_gid } });
        assert_eq!(app.graphql_as(Some(&owner), UNSTAFF, self_removal).await.data()["removeRestaurantStaff"]["userErrors"][0]["code"], "INVALID");
        assert_eq!(app.graphql_as(Some(&owner), UNSTAFF, membership).await.data()["removeRestaurantStaff"]["userErrors"], json!([]));
        assert_eq!(app.graphql_as(Some(&helper), RESUME, json!({ "input": { "restaurantId": restaurant } })).await.error_code(), "FORBIDDEN", "no longer staff");

        // A new slug: the old one no longer resolves, the ID still does.
        let renamed = app.graphql_as(Some(&owner), UPDATE, json!({ "input": { "id": restaurant, "slug": "pho-corner-mitte" } })).await;
        assert_eq!(renamed.data()["updateRestaurant"]["userErrors"], json!([]));
        let taken = app.graphql_as(Some(&owner), UPDATE, json!({ "input": { "id": restaurant, "slug": "trattoria-roma" } })).await;
        assert_eq!(taken.data()["updateRestaurant"]["userErrors"], json!([{ "field": ["input", "slug"], "code": "CONFLICT", "message": "another restaurant has this slug" }]));
        let old = app.graphql("{ restaurant(slug: \"pho-corner\") { id } }", json!({})).await;
        assert_eq!(old.data()["restaurant"], Value::Null);
        let new = app.graphql("{ restaurant(slug: \"pho-corner-mitte\") { id } }", json!({})).await;
        assert_eq!(new.data()["restaurant"]["id"], json!(restaurant));
    }
}

db_test! {
    /// The owner gives a phone number and cuisines and closes for dated days: a closure over
    /// today (in the restaurant's own zone) closes it everywhere `openNow` is decided — the
    /// field, the list filter and placeOrder — and lifting it opens it again. Bad values and
    /// strangers change nothing.
    async fn closures_phone_and_cuisines(app) {
        let (restaurant, items) = roma_items(&app).await;
        let owner = app.bearer(seed::DEMO_OWNER).await;
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        // Far from UTC, so "today" differs from UTC's date for part of every day.
        let zone: chrono_tz::Tz = "Pacific/Kiritimati".parse().unwrap();
        let today = Utc::now().with_timezone(&zone).date_naive();
        let closed = app.graphql_as(Some(&owner), SETTINGS, json!({ "input": { "id": restaurant, "timeZone": "Pacific/Kiritimati",
            "openingHours": always_open(), "phone": " +49 30 1234567 ", "cuisines": ["Italian", "Pizza", "pizza"],
            "closures": [
                { "startsOn": (today - Duration::days(1)).to_string(), "endsOn": today.to_string(), "reason": "Family wedding" },
                { "startsOn": (today + Duration::days(20)).to_string(), "endsOn": (today + Duration::days(21)).to_string() },
                { "startsOn": (today - Duration::days(30)).to_string(), "endsOn": (today - Duration::days(29)).to_string(), "reason": "past" },
            ] } })).await;
        let r = closed.data()["updateRestaurant"]["restaurant"].clone();
        assert_eq!(closed.data()["updateRestaurant"]["userErrors"], json!([]));
        assert_eq!(r["phone"], "+49 30 1234567");
        assert_eq!(r["cuisines"], json!(["italian", "pizza"]));
        assert_eq!(r["openNow"], false);
        assert_eq!(r["closures"], json!([
            { "startsOn": (today - Duration::days(1)).to_string(), "endsOn": today.to_string(), "reason": "Family wedding" },
            { "startsOn": (today + Duration::days(20)).to_string(), "endsOn": (today + Duration::days(21)).to_string(), "reason": "" },
        ]), "past closures are not shown");
        let open_list = "{ restaurants(first: 100, filter: { openNow: true }) { edges { node { id } } } }";
        let listed = app.graphql(open_list, json!({})).await;
        assert!(listed.data()["restaurants"]["edges"].as_array().unwrap().iter().all(|e| e["node"]["id"] != json!(restaurant)));
        let closed_list = app.graphql("{ restaurants(first: 100, filter: { openNow: false, cuisines: [\"pizza\"] }) { edges { node { id } } } }", json!({})).await;
        assert!(closed_list.data()["restaurants"]["edges"].as_array().unwrap().iter().any(|e| e["node"]["id"] == json!(restaurant)));
        let refused = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "closed-today")).await;
        assert_eq!(refused["userErrors"][0]["code"], "RESTAURANT_CLOSED");

        // Tomorrow's closure only: open again.
        let reopened = app.graphql_as(Some(&owner), SETTINGS, json!({ "input": { "id": restaurant,
            "closures": [{ "startsOn": (today + Duration::days(1)).to_string(), "endsOn": (today + Duration::days(1)).to_string() }] } })).await;
        assert_eq!(reopened.data()["updateRestaurant"]["restaurant"]["openNow"], true);
        let listed = app.graphql(open_list, json!({})).await;
        assert!(listed.data()["restaurants"]["edges"].as_array().unwrap().iter().any(|e| e["node"]["id"] == json!(restaurant)));
        let placed = place(&app, &customer, order_input(&restaurant, &available(&items, 1), "open-again")).await;
        assert_eq!(placed["userErrors"], json!([]));

        for (input, field) in [
            (json!({ "phone": "call me" }), json!(["input", "phone"])),
            (json!({ "phone": "1".repeat(41) }), json!(["input", "phone"])),
            (json!({ "cuisines": [""] }), json!(["input", "cuisines", "0"])),
            (json!({ "cuisines": (0..11).map(|n| format!("c{n}")).collect::<Vec<_>>() }), json!(["input", "cuisines"])),
            (json!({ "closures": [{ "startsOn": "2027-01-02", "endsOn": "2027-01-01" }] }), json!(["input", "closures", "0", "endsOn"])),
            (json!({ "closures": [{ "startsOn": "2027-01-01", "endsOn": "2028-06-01" }] }), json!(["input", "closures", "0", "endsOn"])),
            (json!({ "phone": "+1 555 0100", "closures": [{ "startsOn": "2027-01-01", "endsOn": "2027-01-01", "reason": "x".repeat(201) }] }), json!(["input", "closures", "0", "reason"])),
        ] {
            let mut input = input.clone();
            input["id"] = json!(restaurant);
            let refused = app.graphql_as(Some(&owner), SETTINGS, json!({ "input": input })).await;
            assert_eq!(refused.data()["updateRestaurant"]["userErrors"][0]["field"], field, "{input}");
        }
        let bad_date = app.graphql_as(Some(&owner), SETTINGS, json!({ "input": { "id": restaurant, "closures": [{ "startsOn": "2027-02-30", "endsOn": "2027-03-01" }] } })).await;
        assert_eq!(bad_date.error_code(), "BAD_USER_INPUT");
        let staff = staff_of(&app, &restaurant).await;
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let other_owner = format!("Bearer {}", app.tokens.issue(owner_id + 1, None, None, Utc::now()));
        for who in [staff, customer.clone(), other_owner] {
            let refused = app.graphql_as(Some(&who), SETTINGS, json!({ "input": { "id": restaurant, "phone": "110", "closures": [] } })).await;
            assert_eq!(refused.error_code(), "FORBIDDEN", "{who}");
        }
        let now = app.graphql("query($id: ID!) { node(id: $id) { ... on Restaurant { phone cuisines closures { startsOn } } } }", json!({ "id": restaurant })).await;
        assert_eq!(now.data()["node"]["phone"], "+49 30 1234567", "refused updates changed nothing");
        assert_eq!(now.data()["node"]["closures"].as_array().unwrap().len(), 1);
        assert_eq!(now.data()["node"]["cuisines"], json!(["italian", "pizza"]));
    }
}
