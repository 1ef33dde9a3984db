//! GraphiQL in a real browser (Debian's Chromium driven by playwright-core), with nothing
//! reachable but the server: the page loads without a failed request or a console error, a
//! query sent with a header from the Headers tab answers, the docs explorer knows
//! `Restaurant`, and a subscription started in GraphiQL hears an order another client places.

use std::{path::Path, process::Command};

use dishpatch::seed;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, TestApp},
    orders::{available, roma_items},
};

/// Debian's Chromium, or `None` after saying loudly why the browser test is skipped (in CI a
/// missing browser is a failure).
fn chromium() -> Option<String> {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if Path::new(&path).exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but there is no Chromium at {path}: `apt-get install chromium`"
    );
    eprintln!("SKIPPED browser test: no Chromium at {path} (`apt-get install chromium`)");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_works_offline_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "tests/browser has no node_modules: run `npm ci --prefix tests/browser`"
    );
    let app = TestApp::spawn(Backend::Sqlite, 1)
        .await
        .expect("SQLite is always available");
    let (restaurant, items) = roma_items(&app).await;
    let item = available(&items, 1).remove(0);
    let owner = app.bearer(seed::DEMO_OWNER).await;
    let customer = app.bearer(seed::DEMO_CUSTOMER).await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graphiql.png");
    let config = json!({
        "url": app.address,
        "headers": { "Authorization": owner },
        "query": "{ restaurant(slug: \"trattoria-roma\") { name } viewer { displayName } }",
        "expectInResult": "Trattoria Roma",
        "docsType": "Restaurant",
        "subscription": "subscription($id: ID!) { restaurantOrders(restaurantId: $id) { id status } }",
        "subscriptionVariables": { "id": restaurant },
        "trigger": {
            "query": "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id status } userErrors { field message code } } }",
            "variables": { "input": {
                "restaurantId": restaurant,
                "lines": [{ "menuItemId": item, "quantity": 1 }],
                "deliveryAddress": "Via Roma 1",
                "deliveryLocation": { "latitude": 52.53, "longitude": 13.40 },
                "idempotencyKey": "graphiql-{{unique}}",
            } },
            "headers": { "Authorization": customer },
        },
        "expectInSubscription": "PLACED",
        "screenshot": screenshot,
    });
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(dir.join("graphiql.mjs"))
            .arg("--config")
            .arg(config.to_string())
            .env("CHROMIUM", chromium)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "a JSON summary: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(
        output.status.success() && summary["ok"] == true,
        "{summary:#}"
    );
    assert_eq!(
        summary["httpHeadersSent"], true,
        "the Headers tab's header reached the server: {summary:#}"
    );
    assert!(
        screenshot.exists(),
        "the screenshot is kept at {}",
        screenshot.display()
    );
}
