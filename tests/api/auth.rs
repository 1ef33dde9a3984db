//! Who may see and do what: the viewer, private fields, API tokens, admin management,
//! sessions. Every private field and mutation is tried anonymous, as its owner and as a
//! stranger.

use chrono::{Duration, Utc};
use dishpatch::{
    auth::Scope,
    seed,
    services::{api_tokens, sessions},
};
use entities::{api_token, refresh_token};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};

use crate::helpers::{TestApp, db_test};

const CUSTOMER: &str = seed::DEMO_CUSTOMER;
const COURIER: &str = seed::DEMO_COURIER;
const ADMIN: &str = seed::DEMO_ADMIN;

const CREATE_TOKEN: &str = "mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) {
    secret apiToken { id name prefix scopes lastUsedAt revokedAt } userErrors { field message code } } }";
const REVOKE_TOKEN: &str = "mutation($id: ID!) { revokeApiToken(input: { id: $id }) {
    apiToken { id revokedAt } userErrors { field code } } }";

async fn create_token(app: &TestApp, authorization: &str, scopes: Value) -> (String, String) {
    let response = app
        .graphql_as(
            Some(authorization),
            CREATE_TOKEN,
            json!({ "input": { "name": "POS", "scopes": scopes } }),
        )
        .await;
    let payload = response.data()["createApiToken"].clone();
    assert_eq!(payload["userErrors"], json!([]));
    (
        payload["secret"].as_str().unwrap().to_owned(),
        payload["apiToken"]["id"].as_str().unwrap().to_owned(),
    )
}

db_test! {
    async fn the_viewer_is_null_when_anonymous_and_the_user_when_signed_in(app) {
        let anonymous = app.graphql_as(None, "{ viewer { id } }", json!({})).await;
        assert_eq!(anonymous.data()["viewer"], Value::Null);
        let customer = app.bearer(CUSTOMER).await;
        let signed_in = app.graphql_as(Some(&customer), "{ viewer { displayName email roles } }", json!({})).await;
        assert_eq!(signed_in.data()["viewer"], json!({ "displayName": "Casey Customer", "email": CUSTOMER, "roles": ["CUSTOMER"] }));
    }
}

db_test! {
    async fn invalid_credentials_refuse_the_whole_request_with_401(app) {
        let customer = app.bearer(CUSTOMER).await;
        let mut tampered = customer.clone();
        tampered.insert(tampered.len() - 5, 'x');
        let user_id = app.user_id(CUSTOMER).await;
        let expired = format!("Bearer {}", app.tokens.issue(user_id, None, Some(Duration::seconds(-1)), Utc::now()));
        for authorization in [tampered, expired, "Bearer dp_unknown".into(), "Basic abc".into(), "Bearer not.a.jwt".into()] {
            let response = app.graphql_as(Some(&authorization), "{ __typename }", json!({})).await;
            assert_eq!(response.status, 401, "{authorization}");
            assert_eq!(response.error_code(), "UNAUTHENTICATED");
            assert!(response.body.get("data").is_none(), "nothing runs");
        }
    }
}

db_test! {
    async fn private_user_fields_are_for_the_user_and_admins_only(app) {
        let query = "query($id: ID!) { node(id: $id) { ... on User { displayName email roles apiTokens { id } } } }";
        let id = dishpatch::graphql::relay::GlobalId::encode(
            dishpatch::graphql::relay::NodeKind::User,
            app.user_id(CUSTOMER).await,
        );
        let variables = json!({ "id": id });
        let anonymous = app.graphql_as(None, query, variables.clone()).await;
        assert_eq!(anonymous.error_code(), "UNAUTHENTICATED");
        let leaked = |response: &crate::helpers::GraphqlResponse| {
            let node = &response.body["data"]["node"];
            ["email", "roles", "apiTokens"].iter().any(|field| !node[field].is_null())
        };
        assert!(!leaked(&anonymous), "{:#}", anonymous.body);
        let stranger = app.graphql_as(Some(&app.bearer(COURIER).await), query, variables.clone()).await;
        assert_eq!(stranger.error_code(), "FORBIDDEN");
        assert!(!leaked(&stranger), "{:#}", stranger.body);
        let public = app.graphql_as(None, "query($id: ID!) { node(id: $id) { ... on User { displayName } } }", variables.clone()).await;
        assert_eq!(public.data()["node"]["displayName"], "Casey Customer");
        let owner = app.graphql_as(Some(&app.bearer(CUSTOMER).await), query, variables.clone()).await;
        assert_eq!(owner.data()["node"]["email"], CUSTOMER);
        let admin = app.graphql_as(Some(&app.bearer(ADMIN).await), query, variables).await;
        assert_eq!(admin.data()["node"]["email"], CUSTOMER);
    }
}

db_test! {
    async fn api_tokens_work_until_revoked_and_are_stored_only_as_hashes(app) {
        let customer = app.bearer(CUSTOMER).await;
        let (secret, id) = create_token(&app, &customer, json!(["ORDERS_READ"])).await;
        assert!(secret.starts_with("dp_"));
        let as_token = format!("Bearer {secret}");
        let viewer = app.graphql_as(Some(&as_token), "{ viewer { displayName apiTokens { id scopes lastUsedAt } } }", json!({})).await;
        let viewer = viewer.data()["viewer"].clone();
        assert_eq!(viewer["displayName"], "Casey Customer");
        assert_eq!(viewer["apiTokens"][0]["id"], json!(id));
        assert_eq!(viewer["apiTokens"][0]["scopes"], json!(["ORDERS_READ"]));
        assert!(viewer["apiTokens"][0]["lastUsedAt"].is_string(), "use is recorded");

        let rows = api_token::Entity::find().all(&app.db).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_ne!(rows[0].token_hash, secret);
        assert!(!format!("{:?}", rows[0]).contains(&secret[3..]), "the secret is not stored");

        // A stranger can neither see nor revoke it.
        let courier = app.bearer(COURIER).await;
        let stolen = app.graphql_as(Some(&courier), REVOKE_TOKEN, json!({ "id": id })).await;
        assert_eq!(stolen.data()["revokeApiToken"]["userErrors"][0]["code"], "NOT_FOUND");
        let peek = app.graphql_as(Some(&courier), "query($id: ID!) { node(id: $id) { id } }", json!({ "id": id })).await;
        assert_eq!(peek.data()["node"], Value::Null);
        let anonymous = app.graphql_as(None, REVOKE_TOKEN, json!({ "id": id })).await;
        assert_eq!(anonymous.error_code(), "UNAUTHENTICATED");
        let still = app.graphql_as(Some(&as_token), "{ viewer { id } }", json!({})).await;
        assert_eq!(still.status, 200);

        let own = app.graphql_as(Some(&customer), "query($id: ID!) { node(id: $id) { ... on ApiToken { name } } }", json!({ "id": id })).await;
        assert_eq!(own.data()["node"]["name"], "POS");
        let revoked = app.graphql_as(Some(&customer), REVOKE_TOKEN, json!({ "id": id })).await;
        assert!(revoked.data()["revokeApiToken"]["apiToken"]["revokedAt"].is_string());
        let refused = app.graphql_as(Some(&as_token), "{ viewer { id } }", json!({})).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.error_code(), "UNAUTHENTICATED");
    }
}

db_test! {
    async fn expired_api_tokens_are_refused(app) {
        let (secret, _) = create_token(&app, &app.bearer(CUSTOMER).await, json!(["ORDERS_READ"])).await;
        let row = api_token::Entity::find().one(&app.db).await.unwrap().unwrap();
        let mut row: api_token::ActiveModel = row.into();
        row.expires_at = Set(Some(Utc::now() - Duration::minutes(1)));
        row.update(&app.db).await.unwrap();
        let response = app.graphql_as(Some(&format!("Bearer {secret}")), "{ viewer { id } }", json!({})).await;
        assert_eq!(response.status, 401);
    }
}

db_test! {
    async fn bad_api_token_input_is_a_user_error_that_creates_nothing(app) {
        let customer = app.bearer(CUSTOMER).await;
        for (input, field) in [
            (json!({ "name": "  ", "scopes": ["ORDERS_READ"] }), "name"),
            (json!({ "name": "x", "scopes": [] }), "scopes"),
            (json!({ "name": "x", "scopes": ["ORDERS_READ"], "expiresAt": "2001-01-01T00:00:00Z" }), "expiresAt"),
        ] {
            let response = app.graphql_as(Some(&customer), CREATE_TOKEN, json!({ "input": input })).await;
            let payload = &response.data()["createApiToken"];
            assert_eq!(payload["apiToken"], Value::Null);
            assert_eq!(payload["userErrors"][0]["field"], json!(["input", field]));
        }
        assert!(api_token::Entity::find().all(&app.db).await.unwrap().is_empty());
    }
}

db_test! {
    async fn narrowed_credentials_cannot_mint_tokens_or_manage_users(app) {
        let admin = app.bearer(ADMIN).await;
        let (secret, _) = create_token(&app, &admin, json!(["ORDERS_READ", "MENU_WRITE"])).await;
        let api_token = format!("Bearer {secret}");
        let admin_id = app.user_id(ADMIN).await;
        let scoped = format!("Bearer {}", app.tokens.issue(admin_id, Some(&["orders:read".to_owned()]), None, Utc::now()));
        let courier_id = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, app.user_id(COURIER).await);
        let grant = "mutation($id: ID!) { grantRole(input: { userId: $id, role: ADMIN }) { user { roles } } }";
        for credential in [&api_token, &scoped] {
            let minted = app.graphql_as(Some(credential), CREATE_TOKEN, json!({ "input": { "name": "x", "scopes": ["ORDERS_READ"] } })).await;
            assert_eq!(minted.error_code(), "FORBIDDEN");
            let escalated = app.graphql_as(Some(credential), grant, json!({ "id": courier_id })).await;
            assert_eq!(escalated.error_code(), "FORBIDDEN");
        }
        assert_eq!(api_token::Entity::find().all(&app.db).await.unwrap().len(), 1);
    }
}

db_test! {
    async fn only_admins_grant_roles_and_staff_memberships(app) {
        let courier_id = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, app.user_id(COURIER).await);
        let restaurant = app.restaurant_id("sakura-sushi").await;
        let grant = "mutation($id: ID!) { grantRole(input: { userId: $id, role: ADMIN }) { user { roles } userErrors { code } } }";
        let staff = "mutation($r: ID!, $u: ID!) { addRestaurantStaff(input: { restaurantId: $r, userId: $u }) { restaurant { slug } userErrors { code } } }";
        let vars = json!({ "id": courier_id, "r": restaurant, "u": courier_id });
        assert_eq!(app.graphql_as(None, grant, vars.clone()).await.error_code(), "UNAUTHENTICATED");
        let customer = app.bearer(CUSTOMER).await;
        assert_eq!(app.graphql_as(Some(&customer), grant, vars.clone()).await.error_code(), "FORBIDDEN");
        assert_eq!(app.graphql_as(Some(&customer), staff, vars.clone()).await.error_code(), "FORBIDDEN");
        // The courier cannot promote themselves either.
        let courier = app.bearer(COURIER).await;
        assert_eq!(app.graphql_as(Some(&courier), grant, vars.clone()).await.error_code(), "FORBIDDEN");
        let roles = app.graphql_as(Some(&courier), "{ viewer { roles } }", json!({})).await;
        assert_eq!(roles.data()["viewer"]["roles"], json!(["COURIER"]));

        let admin = app.bearer(ADMIN).await;
        let granted = app.graphql_as(Some(&admin), grant, vars.clone()).await;
        assert_eq!(granted.data()["grantRole"]["user"]["roles"], json!(["ADMIN", "COURIER"]));
        let added = app.graphql_as(Some(&admin), staff, vars.clone()).await;
        assert_eq!(added.data()["addRestaurantStaff"]["restaurant"]["slug"], "sakura-sushi");
        let missing = app.graphql_as(Some(&admin), staff, json!({ "r": "UmVzdGF1cmFudDo5OTk5OQ", "u": courier_id })).await;
        assert_eq!(missing.data()["addRestaurantStaff"]["userErrors"][0]["code"], "NOT_FOUND");
        let revoke = "mutation($id: ID!) { revokeRole(input: { userId: $id, role: ADMIN }) { user { roles } } }";
        let revoked = app.graphql_as(Some(&admin), revoke, vars).await;
        assert_eq!(revoked.data()["revokeRole"]["user"]["roles"], json!(["COURIER"]));
        // No admin can lock themselves out: their own admin role stays, with a user error.
        let own = app.user_id(ADMIN).await;
        let own = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, own);
        let refused = app
            .graphql_as(Some(&admin), "mutation($id: ID!) { revokeRole(input: { userId: $id, role: ADMIN }) { user { roles } userErrors { field code } } }", json!({ "id": own }))
            .await;
        assert_eq!(refused.data()["revokeRole"], json!({ "user": null, "userErrors": [{ "field": ["input", "userId"], "code": "INVALID" }] }));
        let roles = app.graphql_as(Some(&admin), "{ viewer { roles } }", json!({})).await;
        assert!(roles.data()["viewer"]["roles"].as_array().unwrap().contains(&json!("ADMIN")));
    }
}

db_test! {
    async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session(app) {
        let user_id = app.user_id(CUSTOMER).await;
        let first = sessions::start(&app.db, user_id, Duration::days(1), Utc::now()).await.unwrap();
        let refresh = |token: String| {
            app.client.post(format!("{}/auth/refresh", app.address)).json(&json!({ "refresh_token": token })).send()
        };
        let rotated = refresh(first.clone()).await.unwrap();
        assert_eq!(rotated.status(), 200);
        let body: Value = rotated.json().await.unwrap();
        let second = body["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(second, first);
        let access = format!("Bearer {}", body["access_token"].as_str().unwrap());
        let viewer = app.graphql_as(Some(&access), "{ viewer { email } }", json!({})).await;
        assert_eq!(viewer.data()["viewer"]["email"], CUSTOMER);

        // Replaying the first token means it leaked: the whole family goes.
        assert_eq!(refresh(first).await.unwrap().status(), 401);
        assert_eq!(refresh(second).await.unwrap().status(), 401, "the newer token is revoked too");

        let other = sessions::start(&app.db, user_id, Duration::days(1), Utc::now()).await.unwrap();
        let logout = app.client.post(format!("{}/auth/logout", app.address)).json(&json!({ "refresh_token": other })).send().await.unwrap();
        assert_eq!(logout.status(), 204);
        assert_eq!(refresh(other).await.unwrap().status(), 401);
        assert_eq!(refresh("garbage".into()).await.unwrap().status(), 401);
    }
}

db_test! {
    async fn racing_refreshes_of_one_token_yield_one_session(app) {
        let user_id = app.user_id(CUSTOMER).await;
        let token = sessions::start(&app.db, user_id, Duration::days(1), Utc::now()).await.unwrap();
        let attempts = (0..8).map(|_| {
            app.client.post(format!("{}/auth/refresh", app.address)).json(&json!({ "refresh_token": token })).send()
        });
        let statuses: Vec<u16> = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect();
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    }
}

db_test! {
    async fn concurrent_api_token_creations_stop_at_the_limit(app) {
        let customer = app.user_id(CUSTOMER).await;
        let limit = usize::try_from(api_tokens::MAX_TOKENS_PER_USER).unwrap();
        let create = || api_tokens::create(&app.db, customer, "rush", &[Scope::OrdersRead], None, Utc::now());
        // All but the last five, several at a time so the pool has its connections open; then
        // many at once, straight to the service so nothing in front of it (admission, rate
        // limits, opening connections) spaces them out.
        for _ in 0..(limit - 5) / 9 {
            for created in futures_util::future::join_all((0..9).map(|_| create())).await {
                created.unwrap().unwrap();
            }
        }
        let attempts = futures_util::future::join_all((0..20).map(|_| create())).await;
        let mut created = 0;
        for attempt in attempts {
            match attempt.unwrap() {
                Ok(_) => created += 1,
                Err(refused) => assert_eq!(refused.code, dishpatch::services::ErrorCode::LimitReached),
            }
        }
        assert_eq!(created, 5);
        let tokens = api_token::Entity::find().all(&app.db).await.unwrap();
        assert_eq!(tokens.iter().filter(|token| token.revoked_at.is_none()).count(), limit);
    }
}

db_test! {
    async fn a_logout_racing_a_refresh_leaves_nothing_of_the_session_alive(app) {
        use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
        let user_id = app.user_id(CUSTOMER).await;
        let day = Duration::days(1);
        for _ in 0..40 {
            let secret = sessions::start(&app.db, user_id, day, Utc::now()).await.unwrap();
            // Both at once: whichever way they interleave, the session ends.
            let (refreshed, logged_out) = tokio::join!(
                sessions::refresh(&app.db, &secret, day, Utc::now()),
                sessions::logout(&app.db, &secret, Utc::now()),
            );
            logged_out.unwrap();
            if let Ok((_, next)) = refreshed.unwrap() {
                let again = sessions::refresh(&app.db, &next, day, Utc::now()).await.unwrap();
                assert_eq!(again.err(), Some(sessions::RefreshError::Invalid), "the refreshed session outlived the logout");
            }
        }
        let live = refresh_token::Entity::find()
            .filter(refresh_token::Column::UserId.eq(user_id))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(live, 0);
    }
}

db_test! {
    /// `viewer.restaurants`: where a dashboard starts after signing in. The owner sees the
    /// restaurants they own as OWNER, staff added by an admin see theirs as STAFF (and lose
    /// it when removed), others see none, and nobody but the user and admins reads the list.
    async fn viewer_restaurants_lists_where_the_user_works_with_the_role(app) {
        use entities::restaurant;
        use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
        const MINE: &str = "{ viewer { id restaurants { role restaurant { id slug } } } }";
        let (owner, customer, courier, admin) = (
            app.bearer(seed::DEMO_OWNER).await,
            app.bearer(seed::DEMO_CUSTOMER).await,
            app.bearer(seed::DEMO_COURIER).await,
            app.bearer(seed::DEMO_ADMIN).await,
        );
        let owner_id = app.user_id(seed::DEMO_OWNER).await;
        let slugs_owned: Vec<String> = restaurant::Entity::find()
            .filter(restaurant::Column::OwnerId.eq(owner_id))
            .order_by_asc(restaurant::Column::Name)
            .order_by_asc(restaurant::Column::Id)
            .all(&app.db)
            .await
            .unwrap()
            .into_iter()
            .map(|restaurant| restaurant.slug)
            .collect();
        assert!(!slugs_owned.is_empty(), "the demo owner owns a restaurant");
        let response = app.graphql_as(Some(&owner), MINE, json!({})).await;
        let places = response.data()["viewer"]["restaurants"].as_array().unwrap().clone();
        let slugs: Vec<&str> = places.iter().map(|p| p["restaurant"]["slug"].as_str().unwrap()).collect();
        assert_eq!(slugs, slugs_owned);
        assert!(places.iter().all(|p| p["role"] == "OWNER"), "{places:?}");

        // Nobody works anywhere until an admin adds them to a staff.
        let none = app.graphql_as(Some(&customer), MINE, json!({})).await;
        assert_eq!(none.data()["viewer"]["restaurants"], json!([]));
        let none = app.graphql_as(Some(&courier), MINE, json!({})).await;
        assert_eq!(none.data()["viewer"]["restaurants"], json!([]));
        let roma = places[0]["restaurant"]["id"].clone();
        let customer_id = app.graphql_as(Some(&customer), MINE, json!({})).await.data()["viewer"]["id"].clone();
        let staff = "mutation($input: StaffInput!) { addRestaurantStaff(input: $input) { userErrors { code } } }";
        let added = app
            .graphql_as(Some(&admin), staff, json!({ "input": { "restaurantId": roma, "userId": customer_id } }))
            .await;
        assert_eq!(added.data()["addRestaurantStaff"]["userErrors"], json!([]));
        let staffed = app.graphql_as(Some(&customer), MINE, json!({})).await;
        assert_eq!(
            staffed.data()["viewer"]["restaurants"],
            json!([{ "role": "STAFF", "restaurant": { "id": roma, "slug": slugs_owned[0] } }])
        );

        // Someone else's list: FORBIDDEN for a stranger, readable by an admin.
        let of_owner = "query($id: ID!) { node(id: $id) { ... on User { restaurants { role } } } }";
        let owner_global = app.graphql_as(Some(&owner), MINE, json!({})).await.data()["viewer"]["id"].clone();
        let stranger = app.graphql_as(Some(&courier), of_owner, json!({ "id": owner_global })).await;
        assert_eq!(stranger.error_code(), "FORBIDDEN", "{}", stranger.body);
        assert!(!stranger.body.to_string().contains("OWNER"), "{}", stranger.body);
        let anonymous = app.graphql(of_owner, json!({ "id": owner_global })).await;
        assert!(!anonymous.body.to_string().contains("OWNER"), "{}", anonymous.body);
        let admins = app.graphql_as(Some(&admin), of_owner, json!({ "id": owner_global })).await;
        assert_eq!(admins.data()["node"]["restaurants"].as_array().unwrap().len(), slugs_owned.len());

        // Removed from the staff: gone from the list.
        let removed = app
            .graphql_as(
                Some(&admin),
                "mutation($input: StaffInput!) { removeRestaurantStaff(input: $input) { userErrors { code } } }",
                json!({ "input": { "restaurantId": roma, "userId": customer_id } }),
            )
            .await;
        assert_eq!(removed.data()["removeRestaurantStaff"]["userErrors"], json!([]));
        let gone = app.graphql_as(Some(&customer), MINE, json!({})).await;
        assert_eq!(gone.data()["viewer"]["restaurants"], json!([]));
    }
}

db_test! {
    /// Many users' workplaces and deliveries in one request are a statement each, however
    /// many users.
    scale = 3,
    async fn workplaces_under_a_list_are_one_statement(app) {
        let admin = app.bearer(seed::DEMO_ADMIN).await;
        let query = "query($n: Int!) { restaurants(first: $n) { edges { node { reviews(first: 3) { edges { node { author {
            restaurants { role } deliveries(first: 2) { edges { node { id } } } } } } } } } } }";
        let small = app.graphql_as(Some(&admin), query, json!({ "n": 2 })).await;
        let large = app.graphql_as(Some(&admin), query, json!({ "n": 20 })).await;
        small.data();
        large.data();
        assert_eq!(small.sql_statements(), large.sql_statements());
    }
}

db_test! {
    /// A socket opened with an API token that is then revoked: its next operations are refused
    /// (`UNAUTHENTICATED`), as the same token over HTTP is, though the socket stays open.
    async fn an_api_token_revoked_while_its_socket_is_open_stops_working_there_too(app) {
        use crate::websocket::{connect, operation, receive, send};
        let customer = app.bearer(CUSTOMER).await;
        let (secret, id) = create_token(&app, &customer, json!(["ORDERS_READ"])).await;
        let mut socket = connect(&app, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {secret}") } })).await;
        assert_eq!(receive(&mut socket).await["type"], "connection_ack");
        let before = operation(&mut socket, "1", "{ viewer { email } }", json!({})).await;
        assert_eq!(before, json!({ "data": { "viewer": { "email": CUSTOMER } } }));

        let revoked = app.graphql_as(Some(&customer), REVOKE_TOKEN, json!({ "id": id })).await;
        assert!(revoked.data()["revokeApiToken"]["apiToken"]["revokedAt"].is_string());
        let after = operation(&mut socket, "2", "{ viewer { email } }", json!({})).await;
        assert_eq!(after["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{after}");
        assert!(after["errors"][0].get("locations").is_none(), "no place in the document: {after}");
        assert!(after.get("data").is_none_or(Value::is_null), "{after}");
        let over_http = app.graphql_as(Some(&format!("Bearer {secret}")), "{ viewer { email } }", json!({})).await;
        assert_eq!(over_http.status, 401);
    }
}

db_test! {
    /// An admin's API token (any scope) or narrowed token reads no other user's personal data
    /// (email, roles, memberships, saved addresses, API tokens; by `node` and `nodes` too): no
    /// scope covers it, as none lets a token list users. The admin's own session still does,
    /// and a token still reads its own user's.
    async fn admin_tokens_read_no_other_users_personal_data(app) {
        let admin = app.bearer(ADMIN).await;
        let customer = app.bearer(CUSTOMER).await;
        let saved = app.graphql_as(Some(&customer), "mutation($input: CreateAddressInput!) { createAddress(input: $input) { address { id } } }",
            json!({ "input": { "label": "Home", "street": "Torstrasse", "houseNumber": "1", "postalCode": "10119", "city": "Berlin",
                               "location": { "latitude": 52.529, "longitude": 13.401 } } })).await;
        let address = saved.data()["createAddress"]["address"]["id"].clone();
        let (_, customer_token) = create_token(&app, &customer, json!(["ORDERS_READ"])).await;
        let person = dishpatch::graphql::relay::GlobalId::encode(dishpatch::graphql::relay::NodeKind::User, app.user_id(CUSTOMER).await);
        let (secret, _) = create_token(&app, &admin, json!(["ORDERS_READ", "MENU_WRITE", "WEBHOOKS_WRITE"])).await;
        let admin_id = app.user_id(ADMIN).await;
        let narrowed = format!("Bearer {}", app.tokens.issue(admin_id, Some(&["orders:read".to_owned()]), None, Utc::now()));
        let fields = "email roles restaurants { role } addresses { street } apiTokens { name }";
        let query = format!("query($u: ID!, $a: ID!, $t: ID!) {{ node(id: $u) {{ ... on User {{ {fields} }} }} \
                             nodes(ids: [$a, $t]) {{ id }} }}");
        let vars = json!({ "u": person, "a": address, "t": customer_token });
        for credential in [format!("Bearer {secret}"), narrowed] {
            let read = app.graphql_as(Some(&credential), &query, vars.clone()).await;
            let errors = read.body["errors"].as_array().unwrap();
            assert!(!errors.is_empty() && errors.iter().all(|e| e["extensions"]["code"] == "FORBIDDEN"), "{}", read.body);
            assert_eq!(read.body["data"], json!({ "node": null, "nodes": [null, null] }), "{}", read.body);
        }
        let by_admin = app.graphql_as(Some(&admin), &query, vars.clone()).await;
        assert!(by_admin.body.get("errors").is_none(), "{}", by_admin.body);
        assert_eq!(by_admin.data()["node"]["email"], CUSTOMER);
        assert_eq!(by_admin.data()["nodes"][0]["id"], address);
        let (own, _) = create_token(&app, &customer, json!(["ORDERS_READ"])).await;
        let by_own_token = app.graphql_as(Some(&format!("Bearer {own}")), &query, vars).await;
        assert!(by_own_token.body.get("errors").is_none(), "{}", by_own_token.body);
        assert_eq!(by_own_token.data()["node"]["addresses"], json!([{ "street": "Torstrasse" }]));
    }
}
