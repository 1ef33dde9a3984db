//! A bounded grammar-based fuzz test: `tests/clients/fuzz.mjs` generates documents and
//! variables from `schema.graphql` (valid and invalid, with hostile text, forged IDs and
//! cursors, and documents over the limits) and sends them as anonymous and as each demo
//! account. Any 5xx (but a timed-out query's 503) or `INTERNAL_SERVER_ERROR` fails it.

use std::{path::Path, process::Command};

use dishpatch::seed;

use crate::helpers::{TestApp, db_test};

/// Requests per run and backend, and the most time they may take.
const REQUESTS: &str = "2000";
const TIME_LIMIT_MS: &str = "120000";

async fn fuzz(app: &TestApp) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        dir.join("tests/clients/node_modules/graphql").exists(),
        "tests/clients has no node_modules: run `npm ci --prefix tests/clients`"
    );
    // A new seed each run (printed, and FUZZ_SEED replays one), so runs cover new ground.
    let seed = std::env::var("FUZZ_SEED").unwrap_or_else(|_| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        (now.as_secs() % 1_000_000).to_string()
    });
    let mut command = Command::new("node");
    command
        .arg(dir.join("tests/clients/fuzz.mjs"))
        .args(["--url", &app.address])
        .arg("--schema")
        .arg(dir.join("schema.graphql"))
        .args([
            "--count",
            REQUESTS,
            "--time-limit-ms",
            TIME_LIMIT_MS,
            "--seed",
            &seed,
        ]);
    for (name, email) in [
        ("customer", seed::DEMO_CUSTOMER),
        ("owner", seed::DEMO_OWNER),
        ("courier", seed::DEMO_COURIER),
        ("admin", seed::DEMO_ADMIN),
    ] {
        let bearer = app.bearer(email).await;
        let token = bearer.trim_start_matches("Bearer ");
        command.args(["--token", &format!("{name}={token}")]);
    }
    let output = tokio::task::spawn_blocking(move || command.output().expect("node runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    println!("fuzz (seed {seed}): {summary}");
    assert!(
        output.status.success(),
        "the fuzzer found failures (replay with FUZZ_SEED={seed}):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn unlimited(backend: crate::helpers::Backend) -> Option<TestApp> {
    TestApp::spawn_with(backend, 1, |settings| settings.rate_limit.enabled = false).await
}

db_test! {
    setup = unlimited,
    async fn generated_documents_never_get_a_5xx_or_an_internal_error(app) {
        fuzz(&app).await;
    }
}
