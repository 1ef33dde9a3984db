//! OAuth 2.0 login against a real OpenID provider (`oidc-provider`, started here on
//! 127.0.0.1), driven headlessly by a browser-like client with a cookie jar.

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use dishpatch::config::{ProviderSettings, ResourceServerSettings, Secret};
use reqwest::{Client, Response, redirect::Policy};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, TestApp, db_test};

const CLIENT_ID: &str = "dishpatch-test";
const CLIENT_SECRET: &str = "dishpatch-test-client-secret";
const FRONTEND: &str = "http://frontend.test";

/// The provider process; killed when dropped.
pub struct OidcProvider {
    port: u16,
    child: Child,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl OidcProvider {
    /// Starts the provider on `port` for a client redirecting to `redirect_uri`; `None` (said
    /// loudly) when its npm packages are not installed here. In CI that is a failure.
    fn start(port: u16, redirect_uri: &str, id_token_ttl: &str) -> Option<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        if !dir.join("node_modules/oidc-provider").exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but tests/oidc has no node_modules: .ci/run must run npm ci there"
            );
            eprintln!(
                "SKIPPED OAuth test: run `npm ci --prefix tests/oidc` to install the OpenID provider"
            );
            return None;
        }
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .env("PORT", port.to_string())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URIS", redirect_uri)
            .env("ID_TOKEN_TTL", id_token_ttl)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert!(line.starts_with("listening"), "the provider starts: {line}");
        // Keep reading, so the provider never writes into a closed pipe.
        std::thread::spawn(move || for _ in stdout.lines().map_while(Result::ok) {});
        Some(Self { port, child })
    }
}

/// A dishpatch server with the provider configured as `test`, plus the provider.
pub struct LoginSetup {
    pub app: TestApp,
    pub provider: Option<OidcProvider>,
}

/// The app and a running provider.
async fn with_provider(backend: Backend) -> Option<LoginSetup> {
    setup(backend, true).await
}

/// The app with a provider configured whose server is down.
async fn with_provider_down(backend: Backend) -> Option<LoginSetup> {
    setup(backend, false).await
}

/// The app accepting the provider's tokens for `CLIENT_ID` as bearer tokens.
async fn with_resource_server(backend: Backend) -> Option<LoginSetup> {
    setup_with(backend, true, Some(CLIENT_ID), "5").await
}

/// The app accepting the provider's tokens, but only for another audience.
async fn with_resource_server_for_others(backend: Backend) -> Option<LoginSetup> {
    setup_with(backend, true, Some("another-api"), "3600").await
}

async fn setup(backend: Backend, provider_up: bool) -> Option<LoginSetup> {
    setup_with(backend, provider_up, None, "3600").await
}

/// The provider configured by explicit endpoints instead of discovery (no JWKS: userinfo).
async fn with_explicit_endpoints(backend: Backend) -> Option<LoginSetup> {
    setup_with(backend, true, None, "3600").await
}

async fn setup_with(
    backend: Backend,
    provider_up: bool,
    resource_audience: Option<&str>,
    id_token_ttl: &str,
) -> Option<LoginSetup> {
    let (app_port, provider_port) = (free_port(), free_port());
    let redirect_uri = format!(
        "http://127.0.0.1:{app_port}/auth/test/callback,http://127.0.0.1:{app_port}/auth/plain/callback"
    );
    let provider = if provider_up {
        Some(OidcProvider::start(
            provider_port,
            &redirect_uri,
            id_token_ttl,
        )?)
    } else {
        None
    };
    let issuer = format!("http://127.0.0.1:{provider_port}");
    let app = TestApp::spawn_with(backend, 1, |settings| {
        settings.listen = format!("127.0.0.1:{app_port}");
        settings.auth.clock_skew_secs = 0;
        settings.auth.resource_server = resource_audience.map(|audience| ResourceServerSettings {
            issuer: issuer.clone(),
            audience: audience.into(),
            jwks_url: None,
            provider_name: "external".into(),
        });
        settings.auth.frontend_origins = vec![FRONTEND.into()];
        settings.auth.providers.insert(
            "test".into(),
            ProviderSettings {
                issuer: Some(issuer.clone()),
                authorize_url: None,
                token_url: None,
                userinfo_url: None,
                client_id: CLIENT_ID.into(),
                client_secret: Secret::new(CLIENT_SECRET),
                scopes: Vec::new(),
            },
        );
        // The same provider by explicit endpoints, as for an OAuth 2.0 provider without
        // discovery (both callbacks are registered with the provider).
        settings.auth.providers.insert(
            "plain".into(),
            ProviderSettings {
                issuer: None,
                authorize_url: Some(format!("{issuer}/auth")),
                token_url: Some(format!("{issuer}/token")),
                userinfo_url: Some(format!("{issuer}/me")),
                client_id: CLIENT_ID.into(),
                client_secret: Secret::new(CLIENT_SECRET),
                scopes: vec!["openid".into(), "email".into(), "profile".into()],
            },
        );
    })
    .await?;
    Some(LoginSetup { app, provider })
}

/// A browser: keeps cookies, follows redirects on 127.0.0.1, stops at the frontend (and, with
/// `stop_at_callback`, before dishpatch's callback, to look at what the provider sends back).
fn browser_with(stop_at_callback: bool) -> Client {
    Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(Policy::custom(move |attempt| {
            let callback = attempt.url().path().ends_with("/callback");
            if attempt.url().host_str() == Some("127.0.0.1")
                && attempt.previous().len() < 20
                && !(stop_at_callback && callback)
            {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn browser() -> Client {
    browser_with(false)
}

/// A client with cookies that follows no redirect.
fn no_follow() -> Client {
    Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Submits the provider's login and consent forms as `login` until the provider redirects
/// away from its own pages; returns that last response.
async fn sign_in_at_provider(browser: &Client, mut page: Response, login: &str) -> Response {
    for _ in 0..4 {
        let url = page.url().clone();
        if page.status() != 200 || !url.path().starts_with("/interaction/") {
            return page;
        }
        let html = page.text().await.unwrap();
        let action = html
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a form on the interaction page");
        let action = url.join(action).unwrap();
        let form: Vec<(&str, &str)> = if html.contains("name=\"prompt\" value=\"login\"") {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else {
            vec![("prompt", "consent")]
        };
        page = browser.post(action).form(&form).send().await.unwrap();
    }
    panic!("the provider kept asking");
}

fn login_url(app: &TestApp) -> String {
    format!(
        "{}/auth/test/login?redirect_to={FRONTEND}/done",
        app.address
    )
}

/// The tokens in the fragment of the frontend redirect.
fn fragment_tokens(response: &Response) -> Value {
    assert_eq!(response.status(), 302, "{response:?}");
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{FRONTEND}/done#")),
        "{location}"
    );
    let fragment = location.split_once('#').unwrap().1;
    Value::Object(
        fragment
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect(),
    )
}

db_test! {
    /// The whole login: dishpatch -> provider login and consent -> callback -> session.
    setup = with_provider,
    async fn a_headless_login_ends_with_a_session_for_the_providers_user(setup) {
        let app = &setup.app;
        let browser = browser();
        let start = browser.get(login_url(app)).send().await.unwrap();
        let done = sign_in_at_provider(&browser, start, "alice").await;
        let tokens = fragment_tokens(&done);
        assert_eq!(tokens["token_type"], "Bearer");
        let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
        let viewer = app.graphql_as(Some(&bearer), "{ viewer { id displayName email roles } }", json!({})).await;
        let viewer = viewer.data()["viewer"].clone();
        assert_eq!(viewer["displayName"], "User alice");
        assert_eq!(viewer["email"], "alice@example.test");
        assert_eq!(viewer["roles"], json!(["CUSTOMER"]));

        // The refresh token from the login works, once.
        let refreshed = app.client.post(format!("{}/auth/refresh", app.address))
            .json(&json!({ "refresh_token": tokens["refresh_token"] })).send().await.unwrap();
        assert_eq!(refreshed.status(), 200);

        // Logging in again finds the same user.
        let again = browser.get(login_url(app)).send().await.unwrap();
        let again = fragment_tokens(&sign_in_at_provider(&browser, again, "alice").await);
        let bearer = format!("Bearer {}", again["access_token"].as_str().unwrap());
        let same = app.graphql_as(Some(&bearer), "{ viewer { id } }", json!({})).await;
        assert_eq!(same.data()["viewer"]["id"], viewer["id"]);
        drop(setup.provider);
    }
}

db_test! {
    setup = with_provider,
    async fn a_callback_with_a_wrong_state_is_refused(setup) {
        let app = &setup.app;
        let browser = browser_with(true);
        let start = browser.get(login_url(app)).send().await.unwrap();
        let page = sign_in_at_provider(&browser, start, "mallory").await;
        let callback_url = page.headers()["location"].to_str().unwrap().to_owned();
        let forged = callback_url.replace("state=", "state=forged");
        let response = browser.get(&forged).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        drop(setup.provider);
    }
}

db_test! {
    /// PKCE: a code obtained in one login, injected into another (whose verifier does not
    /// match), is refused by the provider, so no session starts.
    setup = with_provider,
    async fn an_injected_code_fails_the_pkce_check(setup) {
        let app = &setup.app;
        // The victim starts a login; keep the browser (its cookie holds the verifier and state).
        let victim = no_follow();
        let victim_start = victim.get(login_url(app)).send().await.unwrap();
        let authorize = victim_start.headers()["location"].to_str().unwrap().to_owned();
        let victim_state = query_param(&authorize, "state");

        // The attacker completes a login of their own and captures their code.
        let attacker = browser_with(true);
        let start = attacker.get(login_url(app)).send().await.unwrap();
        let captured = sign_in_at_provider(&attacker, start, "mallory").await;
        let attacker_code = query_param(captured.headers()["location"].to_str().unwrap(), "code");

        let injected = format!("{}/auth/test/callback?code={attacker_code}&state={victim_state}", app.address);
        let response = victim.get(injected).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant");
        drop(setup.provider);
    }
}

db_test! {
    setup = with_provider_down,
    async fn a_provider_that_is_down_gives_a_clear_error(setup) {
        let response = no_follow().get(login_url(&setup.app)).send().await.unwrap();
        assert_eq!(response.status(), 502);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "provider_unavailable");
    }
}

db_test! {
    setup = with_provider,
    async fn logins_only_return_to_configured_frontends(setup) {
        let app = &setup.app;
        for target in [
            "https://evil.test/x",
            "javascript:alert(1)",
            "//evil.test",
            "http://frontend.test.evil.test/",
            "http://frontend.test/done#already-a-fragment",
        ] {
            let response = no_follow()
                .get(format!("{}/auth/test/login", app.address))
                .query(&[("redirect_to", target)])
                .send().await.unwrap();
            assert_eq!(response.status(), 400, "{target}");
        }
        let unknown = no_follow().get(format!("{}/auth/nope/login?redirect_to={FRONTEND}/", app.address)).send().await.unwrap();
        assert_eq!(unknown.status(), 404);
        drop(setup.provider);
    }
}

fn query_param(url: &str, name: &str) -> String {
    let url = reqwest::Url::parse(url).unwrap();
    url.query_pairs().find(|(key, _)| key == name).map_or_else(
        || panic!("{name} in {url}"),
        |(_, value)| value.into_owned(),
    )
}

/// Runs the code flow as a client of the provider itself and returns the ID token it issues:
/// a real JWT signed by the provider, with the client as audience.
async fn provider_id_token(setup: &LoginSetup, login: &str) -> String {
    let app_port = setup.app.address.rsplit(':').next().unwrap().to_owned();
    let provider = setup.provider.as_ref().expect("a running provider");
    let issuer = format!("http://127.0.0.1:{}", provider.port);
    let redirect_uri = format!("http://127.0.0.1:{app_port}/auth/test/callback");
    let verifier = format!("{}-verifier-long-enough-for-pkce-rules", login.repeat(3));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let browser = browser_with(true);
    let start = browser
        .get(format!("{issuer}/auth"))
        .query(&[
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("scope", "openid email profile"),
            ("redirect_uri", redirect_uri.as_str()),
            ("state", "test-state"),
            ("nonce", "test-nonce"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let done = sign_in_at_provider(&browser, start, login).await;
    let code = query_param(done.headers()["location"].to_str().unwrap(), "code");
    let tokens: Value = Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("an ID token: {tokens}"))
        .to_owned()
}

db_test! {
    /// Resource-server mode: the outside provider's JWTs are bearer tokens; the subject becomes
    /// a user on first sight; tampered and expired ones are refused.
    setup = with_resource_server,
    async fn outside_tokens_are_accepted_until_tampered_or_expired(setup) {
        let app = &setup.app;
        let token = provider_id_token(&setup, "bob").await;
        let bearer = format!("Bearer {token}");
        let viewer = app.graphql_as(Some(&bearer), "{ viewer { displayName email roles } }", json!({})).await;
        assert_eq!(viewer.data()["viewer"]["displayName"], "User bob");
        assert_eq!(viewer.data()["viewer"]["roles"], json!(["CUSTOMER"]));
        let first = app.graphql_as(Some(&bearer), "{ viewer { id } }", json!({})).await;
        let second = app.graphql_as(Some(&bearer), "{ viewer { id } }", json!({})).await;
        assert_eq!(first.data()["viewer"]["id"], second.data()["viewer"]["id"], "one user per subject");

        // Outside tokens carry no dishpatch scopes here, so they cannot mint tokens.
        let minted = app.graphql_as(Some(&bearer), "mutation { createApiToken(input: { name: \"x\", scopes: [ORDERS_READ] }) { secret } }", json!({})).await;
        assert_eq!(minted.error_code(), "FORBIDDEN");

        let (head, rest) = token.split_once('.').unwrap();
        let (payload, signature) = rest.split_once('.').unwrap();
        let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["sub"] = json!("someone-else");
        let forged = format!("Bearer {head}.{}.{signature}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let refused = app.graphql_as(Some(&forged), "{ viewer { id } }", json!({})).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.error_code(), "UNAUTHENTICATED");

        // The provider issues ID tokens for 5 seconds here, and no clock skew is allowed: wait
        // until this one's `exp` has passed.
        let exp = claims["exp"].as_i64().unwrap();
        let wait = (exp - chrono::Utc::now().timestamp() + 1).max(0);
        tokio::time::sleep(Duration::from_secs(wait.unsigned_abs())).await;
        let expired = app.graphql_as(Some(&bearer), "{ viewer { id } }", json!({})).await;
        assert_eq!(expired.status, 401);
        assert_eq!(expired.error_code(), "UNAUTHENTICATED");
    }
}

db_test! {
    setup = with_resource_server_for_others,
    async fn outside_tokens_for_another_audience_are_refused(setup) {
        let token = provider_id_token(&setup, "carol").await;
        let refused = setup.app.graphql_as(Some(&format!("Bearer {token}")), "{ viewer { id } }", json!({})).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.error_code(), "UNAUTHENTICATED");
    }
}

db_test! {
    setup = with_explicit_endpoints,
    async fn a_provider_configured_by_endpoints_logs_in_through_userinfo(setup) {
        let app = &setup.app;
        let browser = browser();
        let start = browser
            .get(format!("{}/auth/plain/login?redirect_to={FRONTEND}/done", app.address))
            .send()
            .await
            .unwrap();
        let tokens = fragment_tokens(&sign_in_at_provider(&browser, start, "dave").await);
        let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
        let viewer = app.graphql_as(Some(&bearer), "{ viewer { displayName email } }", json!({})).await;
        assert_eq!(viewer.data()["viewer"]["email"], "dave@example.test");
        drop(setup.provider);
    }
}
