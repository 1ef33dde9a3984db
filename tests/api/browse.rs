//! Browsing restaurants: pagination, orderings, filters, menus and reviews.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{TestApp, db_test, decode_id, node_ids, node_with_id};

const PAGE: &str = "query($first: Int, $after: String, $last: Int, $before: String, $filter: RestaurantFilter, $orderBy: RestaurantOrder) {
  restaurants(first: $first, after: $after, last: $last, before: $before, filter: $filter, orderBy: $orderBy) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id name slug cuisines openNow rating { average count } location { latitude longitude } } }
  }
}";

async fn page(app: &TestApp, variables: Value) -> Value {
    app.graphql(PAGE, variables).await.data()["restaurants"].clone()
}

fn names(connection: &Value) -> Vec<String> {
    connection["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// An edge's cursor is the cursor `pageInfo` gives for the same position.
fn assert_edge_cursors_match_page_info(connection: &Value) {
    let edges = connection["edges"].as_array().expect("edges");
    let (first, last) = (edges.first().expect("an edge"), edges.last().unwrap());
    assert_eq!(first["cursor"], connection["pageInfo"]["startCursor"]);
    assert_eq!(last["cursor"], connection["pageInfo"]["endCursor"]);
}

/// Every restaurant, one page of `size` at a time, forwards.
async fn walk_forward(app: &TestApp, size: i32, extra: &Value) -> Vec<String> {
    let mut all = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut variables = json!({ "first": size, "after": after });
        variables
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        let connection = page(app, variables).await;
        assert_edge_cursors_match_page_info(&connection);
        all.extend(names(&connection));
        if !connection["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            return all;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
}

db_test! {
    async fn paging_forward_visits_every_restaurant_once_in_name_order(app) {
        let all = walk_forward(&app, 7, &json!({})).await;
        assert_eq!(all.len(), 20);
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
        let first = page(&app, json!({ "first": 7 })).await;
        assert_eq!(first["totalCount"], 20);
        assert_eq!(first["pageInfo"]["hasPreviousPage"], false);
        // Any edge's cursor resumes right after that edge.
        let third = first["edges"][2]["cursor"].clone();
        let resumed = page(&app, json!({ "first": 2, "after": third })).await;
        assert_eq!(names(&resumed), all[3..5]);
    }
}

db_test! {
    async fn paging_backward_gives_the_same_restaurants_in_the_same_order(app) {
        let forward = walk_forward(&app, 6, &json!({})).await;
        let mut backward: Vec<String> = Vec::new();
        let mut before = Value::Null;
        loop {
            let connection = page(&app, json!({ "last": 6, "before": before })).await;
            let mut chunk = names(&connection);
            chunk.extend(backward);
            backward = chunk;
            if !connection["pageInfo"]["hasPreviousPage"].as_bool().unwrap() {
                break;
            }
            before = connection["pageInfo"]["startCursor"].clone();
        }
        assert_eq!(backward, forward);
    }
}

db_test! {
    async fn rating_order_is_highest_first_and_pages_without_gaps(app) {
        let order = json!({ "orderBy": { "field": "RATING" } });
        let connection = page(&app, json!({ "first": 100, "orderBy": { "field": "RATING" } })).await;
        let averages: Vec<f64> = connection["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["rating"]["average"].as_f64().unwrap_or(0.0))
            .collect();
        assert!(averages.windows(2).all(|w| w[0] >= w[1]), "{averages:?}");
        assert_eq!(walk_forward(&app, 3, &order).await, names(&connection));
    }
}

db_test! {
    async fn distance_order_and_radius_use_real_distances(app) {
        let center = json!({ "latitude": 52.52, "longitude": 13.405 });
        let filter = json!({ "near": center, "withinKm": 6.0 });
        let response = app
            .graphql(
                "query($filter: RestaurantFilter, $from: GeoPointInput!) {
                   restaurants(first: 100, filter: $filter, orderBy: { field: DISTANCE }) {
                     totalCount edges { node { distanceKm(from: $from) } } } }",
                json!({ "filter": filter, "from": center }),
            )
            .await;
        let connection = &response.data()["restaurants"];
        let distances: Vec<f64> = connection["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["distanceKm"].as_f64().unwrap())
            .collect();
        assert!(!distances.is_empty());
        assert_eq!(connection["totalCount"].as_u64().unwrap() as usize, distances.len());
        assert!(distances.windows(2).all(|w| w[0] <= w[1] + 1e-9), "{distances:?}");
        // The filter's approximation agrees with the haversine distance within a few percent.
        assert!(distances.iter().all(|d| *d <= 6.0 * 1.02), "{distances:?}");

        let all = app
            .graphql(
                "query($from: GeoPointInput!) { restaurants(first: 100) { edges { node { distanceKm(from: $from) } } } }",
                json!({ "from": center }),
            )
            .await;
        let inside = all.data()["restaurants"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["distanceKm"].as_f64().unwrap() <= 6.0 * 0.98)
            .count();
        assert!(distances.len() >= inside, "no restaurant well inside the radius is missed");

        let cursor = page(&app, json!({ "first": 2, "filter": { "near": center }, "orderBy": { "field": "DISTANCE" } })).await;
        let next = page(&app, json!({
            "first": 2,
            "after": cursor["pageInfo"]["endCursor"],
            "filter": { "near": center },
            "orderBy": { "field": "DISTANCE" },
        })).await;
        let first_names = names(&cursor);
        assert!(names(&next).iter().all(|name| !first_names.contains(name)));
    }
}

db_test! {
    async fn cuisine_search_and_open_now_filters_narrow_the_list(app) {
        let thai = page(&app, json!({ "first": 100, "filter": { "cuisines": ["THAI"] } })).await;
        assert_eq!(names(&thai), vec!["Bangkok Street", "Lotus Thai"]);
        for edge in thai["edges"].as_array().unwrap() {
            assert!(edge["node"]["cuisines"].as_array().unwrap().contains(&json!("thai")));
        }
        assert_eq!(thai["totalCount"], 2);

        // Names and descriptions both count: Sakura Sushi serves ramen too.
        let search = page(&app, json!({ "first": 100, "filter": { "search": "RAMEN" } })).await;
        assert_eq!(names(&search), vec!["Ramen Ichiban", "Sakura Sushi"]);
        let by_name = page(&app, json!({ "first": 100, "filter": { "search": "ichiban" } })).await;
        assert_eq!(names(&by_name), vec!["Ramen Ichiban"]);
        let wildcard = page(&app, json!({ "first": 100, "filter": { "search": "%" } })).await;
        assert_eq!(wildcard["totalCount"], 0, "% is matched literally");

        let open = page(&app, json!({ "first": 100, "filter": { "openNow": true } })).await;
        let open_edges = open["edges"].as_array().unwrap();
        assert!(!open_edges.is_empty(), "round-the-clock restaurants are always open");
        assert!(open_edges.iter().all(|e| e["node"]["openNow"] == true));
        assert!(open_edges.iter().any(|e| e["node"]["name"] == "Trattoria Roma"));
        let everything = page(&app, json!({ "first": 100 })).await;
        let open_count = everything["edges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["node"]["openNow"] == true)
            .count();
        assert_eq!(open_edges.len(), open_count, "the SQL filter agrees with openNow");
    }
}

db_test! {
    async fn a_restaurant_is_found_by_slug_and_by_id(app) {
        let query = "query($id: ID, $slug: String) { restaurant(id: $id, slug: $slug) { id name
            deliveryFee { amount currency }
            openingHours { day opens closes closesNextDay durationMinutes } timeZone utcOffsetMinutes
            menu { categories { name position items { name price { amount currency } available dietaryTags imageUrl category { name } } } items { name } }
        } }";
        let by_slug = app.graphql(query, json!({ "slug": "trattoria-roma" })).await;
        let restaurant = by_slug.data()["restaurant"].clone();
        assert_eq!(restaurant["name"], "Trattoria Roma");
        let by_id = app.graphql(query, json!({ "id": restaurant["id"] })).await;
        assert_eq!(by_id.data()["restaurant"], restaurant);

        let categories = restaurant["menu"]["categories"].as_array().unwrap();
        let positions: Vec<i64> = categories.iter().map(|c| c["position"].as_i64().unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]));
        let flat: Vec<&Value> = categories
            .iter()
            .flat_map(|c| c["items"].as_array().unwrap())
            .map(|i| &i["name"])
            .collect();
        let items: Vec<&Value> = restaurant["menu"]["items"].as_array().unwrap().iter().map(|i| &i["name"]).collect();
        assert_eq!(flat, items, "menu.items lists the categories' items in menu order");
        for category in categories {
            for item in category["items"].as_array().unwrap() {
                assert_eq!(item["category"]["name"], category["name"]);
                let amount = item["price"]["amount"].as_str().unwrap();
                assert!(amount.split_once('.').is_some_and(|(_, cents)| cents.len() == 2), "{amount}");
                assert_eq!(item["price"]["currency"], "EUR");
            }
        }
        assert_eq!(restaurant["openingHours"].as_array().unwrap().len(), 7);
        assert_eq!(restaurant["openingHours"][0], json!({ "day": "MONDAY", "opens": "00:00", "closes": "00:00", "closesNextDay": true, "durationMinutes": 1440 }));
        assert_eq!(restaurant["timeZone"], "Europe/Berlin");
        // Berlin is an hour ahead of UTC in winter and two in summer.
        assert!([60, 120].contains(&restaurant["utcOffsetMinutes"].as_i64().unwrap()));

        let missing = app.graphql(query, json!({ "slug": "no-such-place" })).await;
        assert_eq!(missing.data()["restaurant"], Value::Null);
    }
}

db_test! {
    async fn menu_items_follow_the_categories_in_menu_order(app) {
        let query = "{ restaurant(slug: \"trattoria-roma\") { menu { categories { name items { name } } items { name } } } }";
        let category_names = |menu: &Value| -> Vec<String> {
            menu["categories"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
        };
        let before = app.graphql(query, json!({})).await.data()["restaurant"]["menu"].clone();
        // Turn the menu upside down, so menu order is no longer the order the categories were made in.
        app.db
            .execute_unprepared(
                "UPDATE menu_categories SET position = 1000 - position \
                 WHERE restaurant_id = (SELECT id FROM restaurants WHERE slug = 'trattoria-roma')",
            )
            .await
            .unwrap();
        let menu = app.graphql(query, json!({})).await.data()["restaurant"]["menu"].clone();
        let mut reversed = category_names(&before);
        reversed.reverse();
        assert!(reversed.len() > 1);
        assert_eq!(category_names(&menu), reversed);
        let by_category: Vec<&Value> = menu["categories"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|c| c["items"].as_array().unwrap())
            .collect();
        let items: Vec<&Value> = menu["items"].as_array().unwrap().iter().collect();
        assert_eq!(by_category, items, "menu.items lists the categories' items in menu order");
    }
}

db_test! {
    async fn menu_item_details_are_the_same_however_the_query_reaches_them(app) {
        // Listings read the longer columns only when a query selects one of them; every way
        // of asking must still answer with the stored details.
        let restaurant = "restaurant(slug: \"trattoria-roma\")";
        let whole = app
            .graphql(&format!("{{ {restaurant} {{ menu {{ items {{ id name description dietaryTags imageUrl }} }} }} }}"), json!({}))
            .await;
        let items = whole.data()["restaurant"]["menu"]["items"].as_array().unwrap().clone();
        assert!(items.len() > 3);
        assert!(items.iter().all(|item| !item["description"].as_str().unwrap().is_empty()));
        assert!(items.iter().any(|item| !item["dietaryTags"].as_array().unwrap().is_empty()), "the demo data has tags");
        // The same items one by one, read whole by id.
        for item in &items {
            let node = app
                .graphql(
                    "query($id: ID!) { node(id: $id) { ... on MenuItem { id name description dietaryTags imageUrl } } }",
                    json!({ "id": item["id"] }),
                )
                .await;
            assert_eq!(&node.data()["node"], item);
        }
        // Listed without details by category and with them through a fragment in the same
        // request: two column sets of the same menu.
        let mixed = app
            .graphql(
                &format!(
                    "{{ {restaurant} {{ menu {{ categories {{ items {{ id name }} }} items {{ id name ...Details }} }} }} }}
                     fragment Details on MenuItem {{ description dietaryTags imageUrl }}"
                ),
                json!({}),
            )
            .await;
        let menu = &mixed.data()["restaurant"]["menu"];
        assert_eq!(menu["items"].as_array().unwrap(), &items);
        let listed: Vec<&Value> = menu["categories"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|category| category["items"].as_array().unwrap())
            .collect();
        let names: Vec<Value> = items.iter().map(|item| json!({ "id": item["id"], "name": item["name"] })).collect();
        assert_eq!(listed, names.iter().collect::<Vec<_>>());
        // A detail asked beside an object field of the item, category by category.
        let nested = app
            .graphql(
                &format!("{{ {restaurant} {{ menu {{ categories {{ items {{ id category {{ name }} imageUrl }} }} }} }} }}"),
                json!({}),
            )
            .await;
        let images: Vec<&Value> = nested.data()["restaurant"]["menu"]["categories"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|category| category["items"].as_array().unwrap())
            .map(|item| &item["imageUrl"])
            .collect();
        assert_eq!(images, items.iter().map(|item| &item["imageUrl"]).collect::<Vec<_>>());
    }
}

db_test! {
    async fn reviews_page_newest_first_and_count_matches_the_rating(app) {
        let id = app.restaurant_id("trattoria-roma").await;
        let query = "query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
            restaurant(id: $id) { rating { count average }
              reviews(first: $first, after: $after, last: $last, before: $before) {
                totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
                edges { cursor node { id rating body createdAt author { displayName } restaurant { id } } } } } }";
        let mut seen = Vec::new();
        let mut after = Value::Null;
        let mut rating_sum = 0;
        loop {
            let response = app.graphql(query, json!({ "id": id, "first": 25, "after": after })).await;
            let restaurant = response.data()["restaurant"].clone();
            let reviews = &restaurant["reviews"];
            assert_eq!(reviews["totalCount"], restaurant["rating"]["count"]);
            assert_edge_cursors_match_page_info(reviews);
            for edge in reviews["edges"].as_array().unwrap() {
                assert_eq!(edge["node"]["restaurant"]["id"], json!(id));
                rating_sum += edge["node"]["rating"].as_i64().unwrap();
                seen.push(edge["node"]["createdAt"].as_str().unwrap().to_owned());
            }
            if !reviews["pageInfo"]["hasNextPage"].as_bool().unwrap() {
                let count = restaurant["rating"]["count"].as_i64().unwrap();
                assert_eq!(seen.len() as i64, count);
                let average = restaurant["rating"]["average"].as_f64().unwrap();
                assert!((average - rating_sum as f64 / count as f64).abs() < 0.01);
                break;
            }
            after = reviews["pageInfo"]["endCursor"].clone();
        }
        let mut newest_first = seen.clone();
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, newest_first);

        let last = app.graphql(query, json!({ "id": id, "last": 3 })).await;
        let oldest = last.data()["restaurant"]["reviews"]["edges"].as_array().unwrap().clone();
        assert_eq!(oldest.len(), 3);
        assert_eq!(oldest[2]["node"]["createdAt"].as_str().unwrap(), seen.last().unwrap());
    }
}

db_test! {
    /// Review pages of many restaurants in one request (one statement reads each restaurant's
    /// page through its index): every restaurant gets its own newest reviews, forwards and
    /// backwards from a cursor, as the reviews table says.
    async fn review_pages_under_a_list_are_each_restaurants_own(app) {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let page = app
            .graphql(
                "{ restaurants(first: 8) { edges { node { id reviews(first: 3) { edges { cursor node { id } } pageInfo { hasNextPage } } } } } }",
                json!({}),
            )
            .await;
        let (decode, ids) = (decode_id, node_ids);
        let mut checked = 0;
        for edge in page.data()["restaurants"]["edges"].as_array().unwrap() {
            let restaurant = &edge["node"];
            let stored: Vec<i64> = entities::review::Entity::find()
                .filter(entities::review::Column::RestaurantId.eq(decode(&restaurant["id"])))
                .order_by_desc(entities::review::Column::CreatedAt)
                .order_by_desc(entities::review::Column::Id)
                .all(&app.db)
                .await
                .unwrap()
                .into_iter()
                .map(|review| review.id)
                .collect();
            let edges = restaurant["reviews"]["edges"].as_array().unwrap();
            let shown: Vec<i64> = edges.iter().map(|e| decode(&e["node"]["id"])).collect();
            assert_eq!(shown, stored.iter().take(3).copied().collect::<Vec<_>>());
            assert_eq!(restaurant["reviews"]["pageInfo"]["hasNextPage"], stored.len() > 3);
            if stored.len() < 3 {
                continue;
            }
            checked += 1;
            // Backwards from the third: the two before it; forwards after the first: from the
            // second on. Both under the list again, so all restaurants share the statement.
            let query = "query($before: String, $after: String) { restaurants(first: 8) { edges { node { id
                back: reviews(last: 2, before: $before) { edges { node { id } } pageInfo { hasPreviousPage } }
                on: reviews(first: 2, after: $after) { edges { node { id } } } } } } }";
            let around = app
                .graphql(query, json!({ "before": edges[2]["cursor"], "after": edges[0]["cursor"] }))
                .await;
            let mine = node_with_id(&around.data()["restaurants"], &restaurant["id"]);
            assert_eq!(ids(&mine["back"]), stored[..2]);
            assert_eq!(mine["back"]["pageInfo"]["hasPreviousPage"], false);
            assert_eq!(ids(&mine["on"]), stored[1..3]);
        }
        assert!(checked >= 3, "enough restaurants with three reviews or more: {checked}");
    }
}
