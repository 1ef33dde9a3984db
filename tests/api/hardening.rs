//! A public endpoint under attack: GraphQL-over-HTTP conformance, CSRF and CORS, request
//! limits, rate limits by cost, production mode and persisted queries. Every refusal is
//! checked for its code, and for the server still answering everyone else.

use std::{fmt::Write as _, time::Duration};

use dishpatch::{config::Environment, persisted::sha256_hex, seed};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, GraphqlResponse, TestApp, db_test},
    orders::{available, order_input, place, roma_items},
    websocket::{connect, receive, send},
};

async fn sqlite_app(configure: impl FnOnce(&mut dishpatch::config::Settings)) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, 1, configure)
        .await
        .expect("SQLite is always available")
}

/// POSTs `body` as JSON with `accept`.
async fn post_accepting(app: &TestApp, accept: &str, body: &Value) -> GraphqlResponse {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("accept", accept)
        .json(body)
        .send()
        .await
        .unwrap();
    TestApp::read(response).await
}

fn content_type(response: &GraphqlResponse) -> &str {
    response.headers["content-type"].to_str().unwrap()
}

/// The server still answers an ordinary query at once.
async fn still_serves(app: &TestApp) {
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        app.graphql("{ restaurants(first: 2) { totalCount } }", json!({})),
    )
    .await
    .expect("the server answers in time");
    assert_eq!(response.data()["restaurants"]["totalCount"], 20);
}

fn bench_query(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/bench/queries/{name}.graphql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

// --- GraphQL over HTTP -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_take_the_media_type_the_client_accepts() {
    let app = sqlite_app(|_| {}).await;
    let query = json!({ "query": "{ __typename }" });
    let modern = post_accepting(&app, "application/graphql-response+json", &query).await;
    assert_eq!(modern.status, 200);
    assert_eq!(
        content_type(&modern),
        "application/graphql-response+json; charset=utf-8"
    );
    assert_eq!(modern.data()["__typename"], "Query");
    let legacy = post_accepting(&app, "application/json", &query).await;
    assert_eq!(content_type(&legacy), "application/json; charset=utf-8");
    let preferred = post_accepting(
        &app,
        "application/json;q=0.5, application/graphql-response+json",
        &query,
    )
    .await;
    assert!(content_type(&preferred).starts_with("application/graphql-response+json"));
    let anything = post_accepting(&app, "*/*", &query).await;
    assert!(content_type(&anything).starts_with("application/json"));
    let unacceptable = post_accepting(&app, "text/html", &query).await;
    assert_eq!(unacceptable.status, 406);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_errors_are_400_without_data_in_graphql_response_json_and_200_in_json() {
    let app = sqlite_app(|_| {}).await;
    for (query, code) in [
        ("{", "GRAPHQL_PARSE_FAILED"),
        ("{ restaurants { nope } }", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let body = json!({ "query": query });
        let modern = post_accepting(&app, "application/graphql-response+json", &body).await;
        assert_eq!(modern.status, 400, "{query}");
        assert_eq!(modern.error_code(), code);
        assert!(
            modern.body.get("data").is_none(),
            "no data entry: {}",
            modern.body
        );
        let legacy = post_accepting(&app, "application/json", &body).await;
        assert_eq!(legacy.status, 200, "{query}");
        assert_eq!(legacy.error_code(), code);
    }
    // A field error is not a request error: there is data, so the status is 200 either way.
    let partial = post_accepting(
        &app,
        "application/graphql-response+json",
        &json!({ "query": "{ restaurants(first: 101) { totalCount } __typename }" }),
    )
    .await;
    assert_eq!(partial.status, 200, "{}", partial.body);
    assert_eq!(partial.error_code(), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_http_audit_finds_no_must_failures() {
    let app = sqlite_app(|_| {}).await;
    let clients = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients");
    assert!(
        std::path::Path::new(clients).join("node_modules").exists(),
        "run `npm ci --prefix tests/clients` first (the audit is the npm package graphql-http)"
    );
    let output = tokio::process::Command::new("node")
        .arg(format!("{clients}/audit.mjs"))
        .arg(format!("{}/graphql", app.address))
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(output.status.success(), "MUST audits failed:\n{stdout}");
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["summary"]["error"], 0);
    // Every SHOULD passes too; the README lists none as open.
    assert_eq!(summary["warnings"], json!([]), "{stdout}");
}

// --- CSRF and CORS -----------------------------------------------------------------------

db_test! {
    async fn cross_site_form_and_text_posts_never_execute(app) {
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let url = format!("{}/graphql", app.address);
        let mutation = r#"{"query":"mutation { createApiToken(input: { name: \"csrf\", scopes: [ORDERS_READ] }) { secret } }"}"#;
        for content_type in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let response = app.client.post(&url)
                .header("content-type", content_type)
                .header("authorization", &customer)
                .header("origin", "https://evil.example")
                .body(mutation)
                .send().await.unwrap();
            let response = TestApp::read(response).await;
            assert_eq!(response.status, 415, "{content_type}");
            assert!(response.body.get("data").is_none());
        }
        let tokens = app.graphql_as(Some(&customer), "{ viewer { apiTokens { name } } }", json!({})).await;
        assert_eq!(tokens.data()["viewer"]["apiTokens"], json!([]), "nothing was created");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_configured_origins_get_cors_headers() {
    let app = sqlite_app(|settings| {
        settings.cors_allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let url = format!("{}/graphql", app.address);
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let post = |origin: &'static str| {
        app.client
            .post(&url)
            .header("origin", origin)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
    };
    let from_app = post("https://app.example").await.unwrap();
    assert_eq!(
        from_app.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let exposed = from_app.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("ratelimit-remaining"), "{exposed}");
    let from_elsewhere = post("https://evil.example").await.unwrap();
    assert!(
        from_elsewhere
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

// --- limits ------------------------------------------------------------------------------

/// Asserts `response` is refused with `QUERY_TOO_COMPLEX` for `limit`.
fn assert_limit(response: &GraphqlResponse, limit: &str) {
    assert_eq!(
        response.error_code(),
        "QUERY_TOO_COMPLEX",
        "{}",
        response.body
    );
    assert_eq!(
        response.body["errors"][0]["extensions"]["limit"], limit,
        "{}",
        response.body
    );
    assert!(response.body["data"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_products_heaviest_queries_pass_the_default_limits() {
    let app = sqlite_app(|_| {}).await;
    for first in [10, 100] {
        let nested = app
            .graphql(&bench_query("q2_nested"), json!({ "first": first }))
            .await;
        assert!(
            nested.data()["restaurants"]["edges"]
                .as_array()
                .unwrap()
                .len()
                >= 10
        );
    }
    let q1 = app.graphql(&bench_query("q1_restaurants"), json!({})).await;
    assert_eq!(q1.data()["restaurants"]["totalCount"], 20);
    let q3 = app
        .graphql(
            &bench_query("q3_restaurant"),
            json!({ "slug": "trattoria-roma" }),
        )
        .await;
    assert!(
        !q3.data()["restaurant"]["menu"]["categories"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // GraphiQL's own introspection query (graphql-js `getIntrospectionQuery`, all options on).
    let introspection = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/fixtures/introspection.graphql"
    ))
    .unwrap();
    let schema = app.graphql(&introspection, json!({})).await;
    assert_eq!(schema.data()["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_nesting_is_refused_before_it_runs() {
    let app = sqlite_app(|_| {}).await;
    let levels = 10;
    let deep = format!(
        "{{ restaurants(first: 1) {{ edges {{ node {{ {} name {} }} }} }} }}",
        "menu { items { restaurant { ".repeat(levels),
        "} } }".repeat(levels)
    );
    let response = app.graphql(&deep, json!({})).await;
    assert_limit(&response, "maxDepth");
    assert_eq!(response.sql_statements(), 0, "nothing ran");
    assert!(response.error_message().contains("16"));
    // As deep as the token limit allows, in selections and in list values: the parser stops
    // at its own recursion limit, without a crash.
    let abyss = format!("{}{}", "{ a ".repeat(660), "}".repeat(660));
    let refused = app.graphql(&abyss, json!({})).await;
    assert_eq!(refused.error_code(), "GRAPHQL_PARSE_FAILED");
    assert!(
        refused.error_message().contains("recursion limit"),
        "{}",
        refused.body
    );
    let lists = format!(
        "{{ restaurants(filter: {{ cuisines: {}\"x\"{} }}) {{ totalCount }} }}",
        "[".repeat(990),
        "]".repeat(990)
    );
    let refused = app.graphql(&lists, json!({})).await;
    assert!(refused.status < 500);
    assert!(
        !refused.body["errors"].as_array().unwrap().is_empty(),
        "{}",
        refused.body
    );
    // Past the token limit, nothing is even parsed.
    let beyond = format!("{}{}", "{ a ".repeat(5_000), "}".repeat(5_000));
    assert_limit(&app.graphql(&beyond, json!({})).await, "maxTokens");
    still_serves(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_overloading_is_refused() {
    let app = sqlite_app(|_| {}).await;
    let aliases = (0..31)
        .map(|i| format!("a{i}: __typename"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_limit(
        &app.graphql(&format!("{{ {aliases} }}"), json!({})).await,
        "maxAliases",
    );
    // Expensive aliases are caught by cost even when they are few.
    let heavy: String = (0..30)
        .map(|i| format!("r{i}: restaurants(first: 100) {{ edges {{ node {{ name reviews(first: 100) {{ edges {{ node {{ body }} }} }} }} }} }}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert_limit(
        &app.graphql(&format!("{{ {heavy} }}"), json!({})).await,
        "maxComplexity",
    );
    still_serves(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_complexity_counts_the_page_size() {
    let app = sqlite_app(|_| {}).await;
    let query = "query($outer: Int!, $inner: Int!) { restaurants(first: $outer) { edges { node { reviews(first: $inner) { edges { node { body author { displayName } } } } } } } }";
    let small = app
        .graphql(query, json!({ "outer": 10, "inner": 10 }))
        .await;
    assert!(small.body.get("errors").is_none(), "{}", small.body);
    let cost = small.body["extensions"]["cost"]["requested"]
        .as_u64()
        .unwrap();
    let large = app
        .graphql(query, json!({ "outer": 100, "inner": 100 }))
        .await;
    assert_limit(&large, "maxComplexity");
    assert!(
        large.error_message().contains("25000"),
        "{}",
        large.error_message()
    );
    let doubled = app
        .graphql(query, json!({ "outer": 20, "inner": 10 }))
        .await;
    let doubled_cost = doubled.body["extensions"]["cost"]["requested"]
        .as_u64()
        .unwrap();
    assert!(
        doubled_cost > cost * 19 / 10,
        "twice the page costs about twice as much: {cost} vs {doubled_cost}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circular_and_exploding_fragments_are_refused_before_validation() {
    let app = sqlite_app(|_| {}).await;
    let circular = "query { restaurants(first: 1) { edges { node { ...A } } } }
        fragment A on Restaurant { name menu { items { restaurant { ...B } } } }
        fragment B on Restaurant { slug menu { items { restaurant { ...A } } } }";
    let response = app.graphql(circular, json!({})).await;
    assert_eq!(
        response.error_code(),
        "GRAPHQL_VALIDATION_FAILED",
        "{}",
        response.body
    );
    assert!(
        response.error_message().contains("cycles"),
        "{}",
        response.error_message()
    );
    let message = response.error_message();
    assert!(
        message.contains("A -> B -> A") || message.contains("B -> A -> B"),
        "{message}"
    );
    let selfish = app
        .graphql(
            "{ ...F } fragment F on Query { __typename ...F }",
            json!({}),
        )
        .await;
    assert_eq!(selfish.error_code(), "GRAPHQL_VALIDATION_FAILED");

    // Each fragment spreads the next ten times: 10^12 fields once expanded, and within every
    // depth limit, from a 1.5 KB document.
    let mut bomb = String::from("{ ...F0 }\n");
    for level in 0..12 {
        let next = format!("...F{} ", level + 1);
        writeln!(bomb, "fragment F{level} on Query {{ {} }}", next.repeat(10)).unwrap();
    }
    let started = std::time::Instant::now();
    let defused = format!("{bomb}fragment F12 on Query {{ __typename }}\n");
    assert_limit(&app.graphql(&defused, json!({})).await, "maxComplexity");
    println!("the fragment bomb was refused in {:?}", started.elapsed());
    // The same tree ending in spreads of a fragment that does not exist: the spreads
    // themselves are what a walk follows, so they are counted, and the unknown name refused.
    let hollow = format!("{bomb}fragment F12 on Query {{ ...Missing ...Missing }}\n");
    let response = app.graphql(&hollow, json!({})).await;
    assert!(response.status < 500);
    assert!(
        !response.body["errors"].as_array().unwrap().is_empty(),
        "{}",
        response.body
    );
    let unknown = app.graphql("{ ...Missing }", json!({})).await;
    assert_eq!(unknown.error_code(), "GRAPHQL_VALIDATION_FAILED");
    assert!(unknown.error_message().contains("Missing"));
    still_serves(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_documents_are_refused_by_size_and_by_tokens() {
    let app = sqlite_app(|_| {}).await;
    // A megabyte document does not even fit in a request body.
    let megabyte = format!(
        "{{ restaurants(filter: {{ search: \"{}\" }}) {{ totalCount }} }}",
        "x".repeat(1 << 20)
    );
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": megabyte }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // Under the body limit, a long document is refused by its size in bytes...
    let long = format!(
        "{{ restaurants(filter: {{ search: \"{}\" }}) {{ totalCount }} }}",
        "x".repeat(40_000)
    );
    assert_limit(&app.graphql(&long, json!({})).await, "maxDocumentBytes");
    // ...and a short one with too many tokens by its tokens.
    let tokens = format!("{{ {} }}", "__typename ".repeat(2_500));
    assert_limit(&app.graphql(&tokens, json!({})).await, "maxTokens");
    let directives = "{ __typename @include(if: true) @include(if: true) @skip(if: false) @skip(if: false) @include(if: true) }";
    assert_limit(&app.graphql(directives, json!({})).await, "maxDirectives");
    still_serves(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_flooding_is_refused_and_batching_can_be_turned_off() {
    let app = sqlite_app(|_| {}).await;
    let flood: Vec<Value> = (0..50)
        .map(|_| json!({ "query": "{ restaurants(first: 100) { totalCount } }" }))
        .collect();
    let response = app.post_json(&json!(flood)).await;
    assert_eq!(response.status, 400);
    assert_eq!(response.error_code(), "QUERY_TOO_COMPLEX");
    assert!(response.error_message().contains("at most 10"));
    still_serves(&app).await;

    let off = sqlite_app(|settings| settings.max_batch_size = 0).await;
    let response = off.post_json(&json!([{ "query": "{ __typename }" }])).await;
    assert_eq!(response.status, 400);
    assert!(response.error_message().contains("turned off"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_running_past_the_time_limit_is_stopped() {
    let app = sqlite_app(|settings| settings.limits.execution_timeout_ms = 1).await;
    let response = app
        .graphql(&bench_query("q2_nested"), json!({ "first": 100 }))
        .await;
    assert_eq!(response.status, 503, "{}", response.body);
    assert_eq!(response.error_code(), "QUERY_TOO_COMPLEX");
    assert!(response.error_message().contains("1 ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_wait_for_room_by_cost_and_open_subscriptions_hold_none() {
    // Room for one point at a time: every query and mutation runs alone, in turn.
    let app = sqlite_app(|settings| settings.limits.max_concurrent_cost = 1).await;
    let (restaurant, items) = roma_items(&app).await;
    let owner = app.bearer(seed::DEMO_OWNER).await;
    let mut kitchen = connect(&app, "graphql-transport-ws").await;
    send(
        &mut kitchen,
        json!({ "type": "connection_init", "payload": { "Authorization": owner } }),
    )
    .await;
    assert_eq!(receive(&mut kitchen).await["type"], "connection_ack");
    send(
        &mut kitchen,
        json!({ "id": "k", "type": "subscribe", "payload": {
        "query": "subscription($r: ID!) { restaurantOrders(restaurantId: $r) { status } }",
        "variables": { "r": restaurant } } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Queries far over the budget, all at once: each waits its turn and none is refused.
    let nested = bench_query("q2_nested");
    let answers = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(
            (0..6).map(|_| app.graphql(&nested, json!({ "first": 10 }))),
        ),
    )
    .await
    .expect("every query gets its turn while the subscription stays open");
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.data()["restaurants"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
        assert_eq!(
            answer.body["extensions"]["cost"]["requested"],
            answers[0].body["extensions"]["cost"]["requested"]
        );
    }
    assert!(
        answers[0].body["extensions"]["cost"]["requested"]
            .as_u64()
            .unwrap()
            > 1
    );

    // A mutation gets its turn too, and the open subscription hears of it.
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    let placed = tokio::time::timeout(
        Duration::from_secs(10),
        place(
            &app,
            &customer,
            order_input(&restaurant, &available(&items, 1), "room"),
        ),
    )
    .await
    .expect("the mutation runs");
    assert_eq!(placed["userErrors"], json!([]));
    let next = receive(&mut kitchen).await;
    assert_eq!(
        next["payload"]["data"]["restaurantOrders"]["status"],
        "PLACED"
    );
    still_serves(&app).await;
}

// --- rate limits -------------------------------------------------------------------------

fn header_u64(response: &GraphqlResponse, name: &str) -> u64 {
    response.headers[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_caller_spends_its_own_budget_by_query_cost() {
    let app = sqlite_app(|settings| {
        settings.rate_limit.window_secs = 3600; // no window ends mid-test
        settings.rate_limit.anonymous_points = 300;
        settings.rate_limit.user_points = 300;
    })
    .await;
    let query = "{ restaurants(first: 20) { edges { node { name } } } }";
    let first = app.graphql(query, json!({})).await;
    let cost = first.body["extensions"]["cost"]["requested"]
        .as_u64()
        .unwrap();
    assert!(cost > 20, "a connection costs its page: {cost}");
    assert_eq!(header_u64(&first, "ratelimit-limit"), 300);
    assert_eq!(header_u64(&first, "ratelimit-remaining"), 300 - cost);
    assert!(header_u64(&first, "ratelimit-reset") <= 3600);
    assert_eq!(first.headers["ratelimit-policy"], "300;w=3600");

    let mut refused = None;
    for _ in 0..10 {
        let response = app.graphql(query, json!({})).await;
        if response.status == 429 {
            refused = Some(response);
            break;
        }
        response.data();
    }
    let refused = refused.expect("the budget runs out");
    assert_eq!(refused.error_code(), "RATE_LIMITED");
    assert!(refused.body["data"].is_null());
    let retry_after = header_u64(&refused, "retry-after");
    assert!((1..=3600).contains(&retry_after));
    assert_eq!(
        refused.body["errors"][0]["extensions"]["retryAfter"],
        retry_after
    );
    // A cheap request still fits in what is left.
    let cheap = app.graphql("{ __typename }", json!({})).await;
    assert_eq!(cheap.data()["__typename"], "Query");

    // A signed-in user has a budget of their own.
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    let signed_in = app.graphql_as(Some(&customer), query, json!({})).await;
    assert_eq!(signed_in.status, 200);
    assert_eq!(header_u64(&signed_in, "ratelimit-remaining"), 300 - cost);
}

/// A Redis key prefix no other test run shares.
fn unique_prefix() -> String {
    format!(
        "dishpatch-test-{}-{}:",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}

/// `redis://127.0.0.1:6379`, or `None` after saying loudly why the test is skipped (CI
/// requires it).
async fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let reachable = tokio::net::TcpStream::connect(
        url.trim_start_matches("redis://")
            .split('/')
            .next()
            .unwrap(),
    )
    .await
    .is_ok();
    if !reachable {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but Redis at {url} is not reachable"
        );
        eprintln!("SKIPPED: Redis is not reachable at {url}");
        return None;
    }
    Some(url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_enforce_one_budget() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix();
    let configure = |settings: &mut dishpatch::config::Settings| {
        settings.redis_url = Some(dishpatch::config::Secret::new(url.clone()));
        settings.redis_key_prefix.clone_from(&prefix);
        settings.rate_limit.window_secs = 3600; // no window ends mid-test
        settings.rate_limit.anonymous_points = 200;
    };
    let first = sqlite_app(configure).await;
    let second = sqlite_app(configure).await;
    let query = "{ restaurants(first: 20) { edges { node { name } } } }";
    let spent = first.graphql(query, json!({})).await;
    let cost = spent.body["extensions"]["cost"]["requested"]
        .as_u64()
        .unwrap();
    let elsewhere = second.graphql(query, json!({})).await;
    assert_eq!(
        header_u64(&elsewhere, "ratelimit-remaining"),
        200 - 2 * cost,
        "one budget"
    );
    let mut statuses = Vec::new();
    for app in [&first, &second, &first, &second] {
        statuses.push(app.graphql(query, json!({})).await.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

// --- production mode ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_hides_introspection_suggestions_and_graphiql() {
    let app = sqlite_app(|settings| settings.environment = Environment::Production).await;
    let introspection = app
        .graphql(
            "{ __schema { types { name } } __type(name: \"Restaurant\") { fields { name } } }",
            json!({}),
        )
        .await;
    assert!(
        introspection.body["data"]["__schema"].is_null(),
        "{}",
        introspection.body
    );
    assert!(
        introspection.body["data"]["__type"].is_null(),
        "{}",
        introspection.body
    );
    assert!(!introspection.body.to_string().contains("slug"));
    let typo = app
        .graphql("{ restaurants { edges { node { nme } } } }", json!({}))
        .await;
    assert_eq!(typo.error_code(), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        !typo.error_message().contains("Did you mean"),
        "{}",
        typo.error_message()
    );
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(!page.text().await.unwrap().contains("graphiql"));
    still_serves(&app).await;

    let development = sqlite_app(|_| {}).await;
    let typo = development
        .graphql("{ restaurants { edges { node { nme } } } }", json!({}))
        .await;
    assert!(
        typo.error_message().contains("Did you mean"),
        "{}",
        typo.error_message()
    );

    let allowed = sqlite_app(|settings| {
        settings.environment = Environment::Production;
        settings.introspection = Some(true);
    })
    .await;
    let schema = allowed
        .graphql("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(schema.data()["__schema"]["queryType"]["name"], "Query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_say_only_which_request_failed() {
    let app = sqlite_app(|settings| settings.environment = Environment::Production).await;
    // A statement that fails for a reason of the server's own (not an outage, which is
    // SERVICE_UNAVAILABLE): the table it reads is gone.
    sea_orm::ConnectionTrait::execute_unprepared(&app.db, "ALTER TABLE restaurants RENAME TO gone")
        .await
        .unwrap();
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("x-request-id", "req-123")
        .json(&json!({ "query": "{ restaurants(first: 1) { totalCount } }" }))
        .send()
        .await
        .unwrap();
    let response = TestApp::read(response).await;
    assert_eq!(response.error_code(), "INTERNAL_SERVER_ERROR");
    assert_eq!(
        response.error_message(),
        "internal server error (request id req-123)"
    );
    assert_eq!(
        response.body["errors"][0]["extensions"]["requestId"],
        "req-123"
    );
    let text = response.body.to_string().to_lowercase();
    assert!(
        !text.contains("gone") && !text.contains("table"),
        "{}",
        response.body
    );
}

// --- persisted queries -------------------------------------------------------------------

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn get_graphql(app: &TestApp, params: &[(&str, String)]) -> GraphqlResponse {
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(params)
        .send()
        .await
        .unwrap();
    TestApp::read(response).await
}

db_test! {
    async fn automatic_persisted_queries_register_once_and_run_by_hash(app) {
        let query = "query Count { restaurants(first: 1) { totalCount } }";
        let hash = sha256_hex(query);
        let unknown = app.post_json(&json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(unknown.error_code(), "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(unknown.error_message(), "PersistedQueryNotFound");
        let registered = app.post_json(&json!({ "query": query, "extensions": persisted(&hash) })).await;
        assert_eq!(registered.data()["restaurants"]["totalCount"], 20);
        let by_hash = app.post_json(&json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(by_hash.data()["restaurants"]["totalCount"], 20);
        let over_get = get_graphql(&app, &[("extensions", persisted(&hash).to_string())]).await;
        assert_eq!(over_get.data()["restaurants"]["totalCount"], 20);

        let forged = app.post_json(&json!({ "query": "{ __typename }", "extensions": persisted(&hash) })).await;
        assert_eq!(forged.status, 400);
        assert_eq!(forged.error_code(), "BAD_REQUEST");

        // A persisted mutation still cannot run over GET.
        let mutation = "mutation { createApiToken(input: { name: \"apq\", scopes: [ORDERS_READ] }) { secret } }";
        let mutation_hash = sha256_hex(mutation);
        let customer = app.bearer(seed::DEMO_CUSTOMER).await;
        let register = app.client.post(format!("{}/graphql", app.address))
            .header("authorization", &customer)
            .json(&json!({ "query": mutation, "extensions": persisted(&mutation_hash) }))
            .send().await.unwrap();
        assert_eq!(register.status(), 200);
        let smuggled = get_graphql(&app, &[("extensions", persisted(&mutation_hash).to_string())]).await;
        assert_eq!(smuggled.status, 405);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_allow_list_mode_only_registered_operations_run() {
    let listed = "query Listed { restaurants(first: 1) { totalCount } }";
    let manifest = crate::helpers::allow_list_manifest(listed);
    let path = manifest.path().to_owned();
    let app = sqlite_app(move |settings| settings.persisted_queries.allow_list = Some(path)).await;
    let by_hash = app
        .post_json(&json!({ "extensions": persisted(&sha256_hex(listed)) }))
        .await;
    assert_eq!(by_hash.data()["restaurants"]["totalCount"], 20);
    let by_text = app.graphql(listed, json!({})).await;
    assert_eq!(by_text.data()["restaurants"]["totalCount"], 20);
    let other = app
        .graphql("{ restaurants(first: 2) { totalCount } }", json!({}))
        .await;
    assert_eq!(other.status, 403);
    assert_eq!(other.error_code(), "PERSISTED_QUERY_NOT_IN_LIST");
    let query = "{ __typename }";
    let register = app
        .post_json(&json!({ "query": query, "extensions": persisted(&sha256_hex(query)) }))
        .await;
    assert_eq!(
        register.error_code(),
        "PERSISTED_QUERY_NOT_IN_LIST",
        "nothing new can be registered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_queries_are_shared_through_redis() {
    let Some(url) = redis_url().await else { return };
    let prefix = unique_prefix();
    let configure = |settings: &mut dishpatch::config::Settings| {
        settings.redis_url = Some(dishpatch::config::Secret::new(url.clone()));
        settings.redis_key_prefix.clone_from(&prefix);
    };
    let first = sqlite_app(configure).await;
    let second = sqlite_app(configure).await;
    let query = "query Shared { restaurants(first: 3) { totalCount } }";
    let hash = sha256_hex(query);
    assert_eq!(
        second
            .post_json(&json!({ "extensions": persisted(&hash) }))
            .await
            .error_code(),
        "PERSISTED_QUERY_NOT_FOUND"
    );
    first
        .post_json(&json!({ "query": query, "extensions": persisted(&hash) }))
        .await
        .data();
    let elsewhere = second
        .post_json(&json!({ "extensions": persisted(&hash) }))
        .await;
    assert_eq!(elsewhere.data()["restaurants"]["totalCount"], 20);
}

// --- found in review ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_an_api_token_spends_the_same_budget() {
    let app = sqlite_app(|settings| {
        settings.rate_limit.window_secs = 3600;
        settings.rate_limit.token_points = 1_000;
    })
    .await;
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    let created = app
        .graphql_as(
            Some(&customer),
            "mutation { createApiToken(input: { name: \"pos\", scopes: [ORDERS_READ] }) { secret } }",
            json!({}),
        )
        .await;
    let secret = created.data()["createApiToken"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut remaining = Vec::new();
    for spelling in [
        format!("Bearer {secret}"),
        format!("bearer {secret}"),
        format!("Bearer   {secret} "),
    ] {
        let response = app
            .graphql_as(Some(&spelling), "{ viewer { displayName } }", json!({}))
            .await;
        response.data();
        remaining.push(header_u64(&response, "ratelimit-remaining"));
    }
    assert!(
        remaining.windows(2).all(|pair| pair[1] < pair[0]),
        "one budget: {remaining:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_document_is_not_stored_as_a_persisted_query() {
    let app = sqlite_app(|_| {}).await;
    let oversized = format!("{{ {} }}", "__typename ".repeat(2_500));
    let hash = sha256_hex(&oversized);
    let refused = app
        .post_json(&json!({ "query": oversized, "extensions": persisted(&hash) }))
        .await;
    assert_limit(&refused, "maxTokens");
    let invalid = "{ nope }";
    let invalid_hash = sha256_hex(invalid);
    app.post_json(&json!({ "query": invalid, "extensions": persisted(&invalid_hash) }))
        .await;
    for hash in [hash, invalid_hash] {
        let lookup = app
            .post_json(&json!({ "extensions": persisted(&hash) }))
            .await;
        assert_eq!(lookup.error_code(), "PERSISTED_QUERY_NOT_FOUND");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_limit_never_stops_a_mutation_half_way() {
    let app = sqlite_app(|settings| settings.limits.execution_timeout_ms = 1).await;
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    let created = app
        .graphql_as(
            Some(&customer),
            "mutation { createApiToken(input: { name: \"slow\", scopes: [ORDERS_READ] }) { secret } }",
            json!({}),
        )
        .await;
    assert!(created.data()["createApiToken"]["secret"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_only_the_address_it_adds_counts() {
    let query = "{ restaurants(first: 20) { edges { node { name } } } }";
    let remaining_after = |app: &TestApp, forwarded: &'static str| {
        let request = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "query": query }));
        async move {
            header_u64(
                &TestApp::read(request.send().await.unwrap()).await,
                "ratelimit-remaining",
            )
        }
    };
    let trusting = sqlite_app(|settings| {
        settings.rate_limit.window_secs = 3600;
        settings.rate_limit.trust_forwarded_for = true;
    })
    .await;
    let first = remaining_after(&trusting, "203.0.113.7, 198.51.100.1").await;
    let spoofed = remaining_after(&trusting, "192.0.2.99, 198.51.100.1").await;
    assert!(
        spoofed < first,
        "a client-chosen first entry does not make a new budget"
    );
    let other = remaining_after(&trusting, "198.51.100.2").await;
    assert_eq!(other, first, "another address has its own budget");

    let direct = sqlite_app(|settings| settings.rate_limit.window_secs = 3600).await;
    let first = remaining_after(&direct, "203.0.113.7").await;
    let second = remaining_after(&direct, "192.0.2.99").await;
    assert!(
        second < first,
        "without a trusted proxy the header is ignored"
    );
}
