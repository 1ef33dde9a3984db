//! A PostgreSQL of the test's own (`initdb` and `pg_ctl` on a free port), stopped and started
//! under the server: it answers honestly and fast while the database is gone, and recovers.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use dishpatch::{app::Application, config::DatabaseUrl, db, seed};
use serde_json::{Value, json};

/// A PostgreSQL server in a temporary directory, run as the `postgres` user.
pub struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl OwnPostgres {
    /// Initialises and starts one, or `None` after saying loudly why (in CI, a failure).
    pub fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .find(|bin| bin.join("initdb").exists())
            });
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but PostgreSQL's initdb is not installed"
            );
            eprintln!("SKIPPED outage test: no /usr/lib/postgresql/*/bin/initdb");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self { dir, bin, port };
        let data = server.data();
        let status = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(server.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        Self::as_postgres(&[
            &server.tool("initdb"),
            "-D",
            &data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ]);
        server.run_ctl("start");
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    /// Runs `args` as the `postgres` user (PostgreSQL refuses to run as root).
    fn as_postgres(args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .args(args)
            .output()
            .expect("runuser runs");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn run_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        let mut args = vec![
            self.tool("pg_ctl"),
            "-D".into(),
            data,
            "-w".into(),
            "-l".into(),
            log,
        ];
        match action {
            "start" => args.extend(["-o".into(), options, "start".into()]),
            _ => args.extend(["-m".into(), "immediate".into(), "stop".into()]),
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::as_postgres(&args);
    }

    /// Stops it at once, as a crash or a fail-over would.
    pub fn stop(&self) {
        self.run_ctl("stop");
    }

    pub fn start_again(&self) {
        self.run_ctl("start");
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                &self.tool("pg_ctl"),
                "-D",
                &data,
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}

async fn post(address: &str, query: &str) -> (u16, Option<String>, Value, Duration) {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{address}/graphql"))
        .json(&json!({ "query": query }))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry, body, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_down_requests_answer_503_service_unavailable_and_recover() {
    let Some(postgres) = OwnPostgres::start() else {
        return;
    };
    let mut settings = crate::helpers::test_settings(&postgres.url());
    settings.database_url = DatabaseUrl(postgres.url());
    let seeding = db::connect(&settings.database_url, 2)
        .await
        .expect("connect");
    db::migrate(&seeding).await.expect("migrate");
    seed::seed_demo(&seeding, 1).await.expect("seed");
    seeding.close().await.unwrap();
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let query = "{ restaurant(slug: \"trattoria-roma\") { name } }";
    let (status, _, body, _) = post(&address, query).await;
    assert_eq!(
        (status, &body["data"]["restaurant"]["name"]),
        (200, &json!("Trattoria Roma"))
    );

    postgres.stop();
    let started = Instant::now();
    let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "/readyz answered after {:?}",
        started.elapsed()
    );

    let (status, retry, body, took) = post(&address, query).await;
    assert_eq!(status, 503, "{body:#}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "{body:#}"
    );
    assert!(retry.is_some(), "Retry-After is sent");
    assert!(
        took < Duration::from_secs(9),
        "answered before the execution limit: {took:?}"
    );

    postgres.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body, _) = post(&address, query).await;
        if status == 200 {
            assert_eq!(body["data"]["restaurant"]["name"], "Trattoria Roma");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not recovered: {status} {body:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ready = reqwest::get(format!("{address}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
}
