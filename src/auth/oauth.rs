//! OAuth 2.0 login (authorization code + PKCE) against configured providers, dishpatch
//! sessions (`/auth/refresh`, `/auth/logout`), and outside bearer tokens (resource server).
//!
//! The login keeps its state, nonce, PKCE verifier and `redirect_to` in an encrypted,
//! authenticated, short-lived HttpOnly cookie: a client can neither read nor forge it, and the
//! callback clears it so it cannot be replayed.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, CookieJar, Key, SameSite},
    http::{StatusCode, header},
    web,
};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope as OAuthScope,
    StandardRevocableToken, StandardTokenResponse, TokenResponse, TokenUrl,
    basic::{
        BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
        BasicTokenType,
    },
};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    Scope, Viewer,
    secrets::{self, constant_time_eq},
    tokens::AccessTokens,
    viewer::{AuthFailure, Credential},
};
use crate::{
    config::{AuthSettings, ProviderSettings, ResourceServerSettings},
    services::{
        sessions::{self, RefreshError},
        users::{self, ExternalProfile},
    },
};

const LOGIN_COOKIE: &str = "dishpatch_login";
const LOGIN_TTL_SECS: i64 = 600;
/// An unknown `kid` refetches a JWKS at most this often.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// After a failed JWKS fetch, tokens that need that set are refused at once for this long
/// instead of each trying again (a provider's outage would otherwise cost every request a
/// fetch of up to the HTTP client's timeout).
const JWKS_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// Signature algorithms accepted from outside providers: asymmetric ones only.
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// An HTTP client for talking to providers: short timeouts, no redirects (no SSRF through a
/// redirecting endpoint).
pub fn provider_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a TLS-capable HTTP client")
}

/// The instant a JWT `NumericDate` (seconds since the epoch, perhaps with a fraction) names.
fn expires_at(numeric_date: f64) -> Option<DateTime<Utc>> {
    let millis = (numeric_date * 1000.0).floor();
    // In range for i64 milliseconds (and for chrono, which checks again).
    if millis.is_finite() && millis.abs() < 1e17 {
        #[allow(clippy::cast_possible_truncation)]
        DateTime::from_timestamp_millis(millis as i64)
    } else {
        None
    }
}

/// Why a provider could not be used.
#[derive(Debug, Clone)]
pub struct ProviderError(pub String);

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn provider_error(context: &str, error: impl std::fmt::Display) -> ProviderError {
    ProviderError(format!("{context}: {error}"))
}

/// Keys published by providers, cached, refetched when a token names an unknown `kid`.
pub struct JwksCache {
    http: reqwest::Client,
    sets: Mutex<HashMap<String, (Instant, Arc<JwkSet>)>>,
    /// When fetching each set last failed, and why.
    failures: Mutex<HashMap<String, (Instant, ProviderError)>>,
    /// Per set, held while it is fetched: requests that miss at the same time wait for that
    /// one fetch instead of each making their own (one slow provider holds up only its own).
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl JwksCache {
    pub fn new(http: reqwest::Client) -> Self {
        Self {
            http,
            sets: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
        }
    }

    /// The key `kid` of the set at `url`.
    pub async fn key(
        &self,
        url: &str,
        kid: Option<&str>,
    ) -> Result<Option<DecodingKey>, ProviderError> {
        if let Some(known) = self.known(url, kid) {
            return known;
        }
        let turn = (self.fetching.lock().expect("jwks lock"))
            .entry(url.to_owned())
            .or_default()
            .clone();
        let _turn = turn.lock().await;
        // Whoever held the turn before may have fetched (or failed to fetch) this very set.
        if let Some(known) = self.known(url, kid) {
            return known;
        }
        let fetched = self.fetch(url).await;
        let now = Instant::now();
        match fetched {
            Ok(set) => {
                let set = Arc::new(set);
                self.failures.lock().expect("jwks lock").remove(url);
                self.sets
                    .lock()
                    .expect("jwks lock")
                    .insert(url.to_owned(), (now, set.clone()));
                Ok(find_key(&set, kid))
            }
            Err(error) => {
                self.failures
                    .lock()
                    .expect("jwks lock")
                    .insert(url.to_owned(), (now, error.clone()));
                Err(error)
            }
        }
    }

    /// The answer without fetching: the key from the cached set, no key when the set was
    /// fetched lately, the error when fetching it failed lately; `None` when it must be
    /// fetched.
    fn known(
        &self,
        url: &str,
        kid: Option<&str>,
    ) -> Option<Result<Option<DecodingKey>, ProviderError>> {
        let cached = self.sets.lock().expect("jwks lock").get(url).cloned();
        if let Some((fetched, set)) = &cached {
            if let Some(key) = find_key(set, kid) {
                return Some(Ok(Some(key)));
            }
            if fetched.elapsed() < JWKS_REFETCH_INTERVAL {
                return Some(Ok(None));
            }
        }
        let failures = self.failures.lock().expect("jwks lock");
        match failures.get(url) {
            Some((failed, error)) if failed.elapsed() < JWKS_RETRY_AFTER_FAILURE => {
                Some(Err(error.clone()))
            }
            _ => None,
        }
    }

    async fn fetch(&self, url: &str) -> Result<JwkSet, ProviderError> {
        self.http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| provider_error("fetching the JWKS", e))?
            .json()
            .await
            .map_err(|e| provider_error("reading the JWKS", e))
    }
}

fn find_key(set: &JwkSet, kid: Option<&str>) -> Option<DecodingKey> {
    let jwk = match kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }?;
    DecodingKey::from_jwk(jwk).ok()
}

/// What OpenID discovery tells about a provider.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
}

async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata, ProviderError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let metadata: Metadata = http
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| provider_error("OpenID discovery", e))?
        .json()
        .await
        .map_err(|e| provider_error("reading the discovery document", e))?;
    if metadata.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
        return Err(ProviderError(
            "the discovery document names another issuer".into(),
        ));
    }
    Ok(metadata)
}

/// The token endpoint's answer, with the OpenID `id_token`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IdTokenField {
    #[serde(default)]
    id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type OidcTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type OidcClient = oauth2::Client<
    BasicErrorResponse,
    OidcTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A configured provider, with its endpoints found (once) by discovery.
struct Provider {
    name: String,
    settings: ProviderSettings,
    metadata: tokio::sync::OnceCell<Metadata>,
}

impl Provider {
    async fn metadata(&self, http: &reqwest::Client) -> Result<&Metadata, ProviderError> {
        self.metadata
            .get_or_try_init(|| async {
                match &self.settings.issuer {
                    Some(issuer) => discover(http, issuer).await,
                    None => Ok(Metadata {
                        issuer: String::new(),
                        authorization_endpoint: self.settings.authorize_url.clone().ok_or_else(
                            || ProviderError("authorize_url or issuer is required".into()),
                        )?,
                        token_endpoint: self.settings.token_url.clone().ok_or_else(|| {
                            ProviderError("token_url or issuer is required".into())
                        })?,
                        userinfo_endpoint: self.settings.userinfo_url.clone(),
                        jwks_uri: None,
                    }),
                }
            })
            .await
    }

    fn scopes(&self) -> Vec<String> {
        if self.settings.scopes.is_empty() && self.settings.issuer.is_some() {
            vec!["openid".into(), "email".into(), "profile".into()]
        } else {
            self.settings.scopes.clone()
        }
    }
}

/// The login state kept in the encrypted cookie between login and callback.
#[derive(Debug, Serialize, Deserialize)]
struct LoginState {
    #[serde(rename = "p")]
    provider: String,
    #[serde(rename = "s")]
    state: String,
    #[serde(rename = "n")]
    nonce: String,
    #[serde(rename = "v")]
    verifier: String,
    #[serde(rename = "r")]
    redirect_to: String,
    #[serde(rename = "e")]
    expires_at: i64,
}

/// Everything the `/auth` routes need.
pub struct OAuth {
    providers: BTreeMap<String, Provider>,
    public_url: String,
    frontend_origins: HashSet<String>,
    secure_cookies: bool,
    cookie_key: Key,
    http: reqwest::Client,
    jwks: Arc<JwksCache>,
    refresh_ttl: chrono::Duration,
    clock_skew_secs: u64,
}

impl OAuth {
    /// From settings; `listen_url` is used when no public URL is configured.
    pub fn new(
        settings: &AuthSettings,
        listen_url: &str,
        cookie_secret: &[u8],
        jwks: Arc<JwksCache>,
    ) -> Self {
        let public_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| listen_url.to_owned())
            .trim_end_matches('/')
            .to_owned();
        // 64 bytes of cookie key derived from the signing secret, apart from its JWT use.
        let mut material = Vec::with_capacity(64);
        for label in [b"dishpatch login cookie 1", b"dishpatch login cookie 2"] {
            material.extend(
                Sha256::new()
                    .chain_update(label)
                    .chain_update(cookie_secret)
                    .finalize(),
            );
        }
        Self {
            providers: settings
                .providers
                .iter()
                .map(|(name, provider)| {
                    (
                        name.clone(),
                        Provider {
                            name: name.clone(),
                            settings: provider.clone(),
                            metadata: tokio::sync::OnceCell::new(),
                        },
                    )
                })
                .collect(),
            secure_cookies: public_url.starts_with("https://"),
            public_url,
            frontend_origins: settings
                .frontend_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned())
                .collect(),
            cookie_key: Key::from(&material),
            http: jwks.http.clone(),
            jwks,
            refresh_ttl: chrono::Duration::seconds(
                i64::try_from(settings.refresh_token_ttl_secs).unwrap_or(i64::MAX / 2),
            ),
            clock_skew_secs: settings.clock_skew_secs,
        }
    }

    fn redirect_uri(&self, provider: &str) -> String {
        format!("{}/auth/{provider}/callback", self.public_url)
    }

    /// Whether `url` is on one of the configured frontend origins.
    fn allowed_redirect(&self, url: &str) -> bool {
        let Ok(parsed) = oauth2::url::Url::parse(url) else {
            return false;
        };
        let origin = parsed.origin().ascii_serialization();
        // The tokens travel in the fragment, so the target must not have one already.
        matches!(parsed.scheme(), "http" | "https")
            && parsed.fragment().is_none()
            && self.frontend_origins.contains(&origin)
    }

    fn client(
        &self,
        provider: &Provider,
        metadata: &Metadata,
    ) -> Result<OidcClient, ProviderError> {
        Ok(
            oauth2::Client::new(ClientId::new(provider.settings.client_id.clone()))
                .set_client_secret(ClientSecret::new(
                    provider.settings.client_secret.expose().to_owned(),
                ))
                .set_auth_uri(
                    AuthUrl::new(metadata.authorization_endpoint.clone())
                        .map_err(|e| provider_error("authorize URL", e))?,
                )
                .set_token_uri(
                    TokenUrl::new(metadata.token_endpoint.clone())
                        .map_err(|e| provider_error("token URL", e))?,
                )
                .set_redirect_uri(
                    RedirectUrl::new(self.redirect_uri(&provider.name))
                        .map_err(|e| provider_error("redirect URL", e))?,
                ),
        )
    }
}

/// A JSON error of the `/auth` routes, OAuth style.
fn auth_error(status: StatusCode, error: &str, description: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status)
        .json(json!({ "error": error, "error_description": description.into() }))
}

/// Mounts `/auth/*`.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/auth/refresh", web::post().to(refresh))
        .route("/auth/logout", web::post().to(logout))
        .route("/auth/{provider}/login", web::get().to(login))
        .route("/auth/{provider}/callback", web::get().to(callback));
}

/// State the `/auth` routes share.
pub struct AuthState {
    pub db: DatabaseConnection,
    pub tokens: Arc<AccessTokens>,
    pub oauth: OAuth,
}

#[derive(Deserialize)]
struct LoginQuery {
    redirect_to: Option<String>,
}

async fn login(
    path: web::Path<String>,
    query: web::Query<LoginQuery>,
    state: web::Data<AuthState>,
) -> HttpResponse {
    let oauth = &state.oauth;
    let Some(provider) = oauth.providers.get(path.as_str()) else {
        return auth_error(
            StatusCode::NOT_FOUND,
            "unknown_provider",
            "no such login provider",
        );
    };
    let Some(redirect_to) = query
        .redirect_to
        .clone()
        .filter(|r| oauth.allowed_redirect(r))
    else {
        return auth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`redirect_to` must be a URL on a configured frontend origin",
        );
    };
    let metadata = match provider.metadata(&oauth.http).await {
        Ok(metadata) => metadata,
        Err(error) => {
            tracing::warn!(provider = %provider.name, %error, "login provider unavailable");
            return auth_error(
                StatusCode::BAD_GATEWAY,
                "provider_unavailable",
                "the login provider cannot be reached",
            );
        }
    };
    let client = match oauth.client(provider, metadata) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(provider = %provider.name, %error, "login provider misconfigured");
            return auth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the login provider is misconfigured",
            );
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = secrets::random_secret();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge)
        .add_extra_param("nonce", nonce.clone());
    for scope in provider.scopes() {
        request = request.add_scope(OAuthScope::new(scope));
    }
    let (url, csrf) = request.url();
    let login = LoginState {
        provider: provider.name.clone(),
        state: csrf.secret().clone(),
        nonce,
        verifier: verifier.secret().clone(),
        redirect_to,
        expires_at: Utc::now().timestamp() + LOGIN_TTL_SECS,
    };
    let mut jar = CookieJar::new();
    let cookie = Cookie::build(
        LOGIN_COOKIE,
        serde_json::to_string(&login).expect("login state serializes"),
    )
    .path("/auth")
    .http_only(true)
    .secure(oauth.secure_cookies)
    // Lax: the provider sends the browser back with a top-level GET.
    .same_site(SameSite::Lax)
    .max_age(actix_web::cookie::time::Duration::seconds(LOGIN_TTL_SECS))
    .finish();
    jar.private_mut(&oauth.cookie_key).add(cookie);
    let encrypted = jar.get(LOGIN_COOKIE).expect("just added").clone();
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(encrypted)
        .finish()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Claims of an OpenID ID token that dishpatch reads.
#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    nonce: Option<String>,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    name: Option<String>,
}

async fn callback(
    request: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CallbackQuery>,
    state: web::Data<AuthState>,
) -> HttpResponse {
    // The login cookie is single-use: every answer of the callback clears it.
    let mut clear = Cookie::build(LOGIN_COOKIE, "").path("/auth").finish();
    clear.make_removal();
    let mut response = match finish_login(&request, &path, &query, &state).await {
        Ok(location) => HttpResponse::Found()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(response) => response,
    };
    let _ = response.add_cookie(&clear);
    response
}

async fn finish_login(
    request: &HttpRequest,
    provider_name: &str,
    query: &CallbackQuery,
    state: &AuthState,
) -> Result<String, HttpResponse> {
    let oauth = &state.oauth;
    let bad =
        |description: &str| auth_error(StatusCode::BAD_REQUEST, "invalid_request", description);
    let provider = oauth.providers.get(provider_name).ok_or_else(|| {
        auth_error(
            StatusCode::NOT_FOUND,
            "unknown_provider",
            "no such login provider",
        )
    })?;
    let login: LoginState = request
        .cookie(LOGIN_COOKIE)
        .and_then(|cookie| {
            let mut jar = CookieJar::new();
            jar.add_original(cookie);
            jar.private(&oauth.cookie_key).get(LOGIN_COOKIE)
        })
        .and_then(|cookie| serde_json::from_str(cookie.value()).ok())
        .ok_or_else(|| bad("no login in progress in this browser"))?;
    if login.provider != provider.name || login.expires_at < Utc::now().timestamp() {
        return Err(bad(
            "the login expired or belongs to another provider; start again",
        ));
    }
    let state_matches = query
        .state
        .as_deref()
        .is_some_and(|given| constant_time_eq(given, &login.state));
    if !state_matches {
        return Err(bad("the state does not match this login"));
    }
    // Only now, with the state matching this login, is an error answer believed.
    if query.error.is_some() {
        return Err(auth_error(
            StatusCode::UNAUTHORIZED,
            "access_denied",
            "the provider did not authorize the login",
        ));
    }
    let code = query
        .code
        .clone()
        .ok_or_else(|| bad("the provider sent no code"))?;
    let unavailable = |error: ProviderError| {
        tracing::warn!(provider = %provider.name, %error, "login failed at the provider");
        auth_error(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            "the login provider cannot be reached",
        )
    };
    let metadata = provider.metadata(&oauth.http).await.map_err(unavailable)?;
    let client = oauth.client(provider, metadata).map_err(unavailable)?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(login.verifier.clone()))
        .request_async(&oauth.http)
        .await
        .map_err(|error| {
            tracing::warn!(provider = %provider.name, error = %error, "code exchange refused");
            auth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                "the provider refused the authorization code",
            )
        })?;
    // An ID token is only as good as the keys it can be checked against: without a JWKS
    // (explicitly configured endpoints), the userinfo endpoint says who logged in.
    let id_token = tokens
        .extra_fields()
        .id_token
        .as_ref()
        .filter(|_| metadata.jwks_uri.is_some());
    let profile = match id_token {
        Some(id_token) => verify_id_token(oauth, provider, metadata, id_token, &login.nonce)
            .await
            .map_err(|error| {
                tracing::warn!(provider = %provider.name, %error, "ID token refused");
                auth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "the provider's ID token is not valid",
                )
            })?,
        None => userinfo(oauth, provider, metadata, tokens.access_token().secret())
            .await
            .map_err(unavailable)?,
    };
    let now = Utc::now();
    let internal = |error| {
        tracing::error!(error = ?error, "starting a session failed");
        auth_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the session could not be started",
        )
    };
    let user = users::find_or_create(&state.db, &profile, now)
        .await
        .map_err(internal)?;
    let refresh_token = sessions::start(&state.db, user.id, oauth.refresh_ttl, now)
        .await
        .map_err(internal)?;
    let access_token = state.tokens.issue(user.id, None, None, now);
    tracing::info!(user_id = user.id, provider = %provider.name, "login");
    // The fragment stays in the browser: it is not sent to the frontend's server.
    Ok(format!(
        "{}#access_token={access_token}&refresh_token={refresh_token}&token_type=Bearer&expires_in={}",
        login.redirect_to,
        state.tokens.ttl().num_seconds()
    ))
}

async fn verify_id_token(
    oauth: &OAuth,
    provider: &Provider,
    metadata: &Metadata,
    id_token: &str,
    nonce: &str,
) -> Result<ExternalProfile, ProviderError> {
    let header =
        jsonwebtoken::decode_header(id_token).map_err(|e| provider_error("ID token header", e))?;
    if !ASYMMETRIC.contains(&header.alg) {
        return Err(ProviderError(format!(
            "algorithm {:?} is not accepted",
            header.alg
        )));
    }
    let jwks_uri = metadata
        .jwks_uri
        .as_deref()
        .ok_or_else(|| ProviderError("the provider publishes no JWKS".into()))?;
    let key = oauth
        .jwks
        .key(jwks_uri, header.kid.as_deref())
        .await?
        .ok_or_else(|| ProviderError("the ID token's key is not in the provider's JWKS".into()))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&metadata.issuer]);
    validation.set_audience(&[&provider.settings.client_id]);
    validation.leeway = oauth.clock_skew_secs;
    let claims = jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation)
        .map_err(|e| provider_error("ID token", e))?
        .claims;
    if !claims
        .nonce
        .as_deref()
        .is_some_and(|n| constant_time_eq(n, nonce))
    {
        return Err(ProviderError(
            "the ID token's nonce does not match this login".into(),
        ));
    }
    Ok(ExternalProfile {
        provider: provider.name.clone(),
        subject: claims.sub,
        // Only an email the provider vouches for is kept: users are found by email elsewhere.
        email: claims.email.filter(|_| claims.email_verified),
        name: claims.name,
    })
}

async fn userinfo(
    oauth: &OAuth,
    provider: &Provider,
    metadata: &Metadata,
    access_token: &str,
) -> Result<ExternalProfile, ProviderError> {
    let url = metadata
        .userinfo_endpoint
        .as_deref()
        .ok_or_else(|| ProviderError("no ID token and no userinfo endpoint".into()))?;
    let info: Value = oauth
        .http
        .get(url)
        .bearer_auth(access_token)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| provider_error("userinfo", e))?
        .json()
        .await
        .map_err(|e| provider_error("reading userinfo", e))?;
    let subject = match &info["sub"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => match &info["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(ProviderError("userinfo has no subject".into())),
        },
    };
    Ok(ExternalProfile {
        provider: provider.name.clone(),
        subject,
        email: info["email"]
            .as_str()
            .filter(|_| info["email_verified"].as_bool() == Some(true))
            .map(str::to_owned),
        name: info["name"].as_str().map(str::to_owned),
    })
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(body: web::Json<RefreshBody>, state: web::Data<AuthState>) -> HttpResponse {
    let now = Utc::now();
    match sessions::refresh(&state.db, &body.refresh_token, state.oauth.refresh_ttl, now).await {
        Ok(Ok((user_id, refresh_token))) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "access_token": state.tokens.issue(user_id, None, None, now),
                "refresh_token": refresh_token,
                "token_type": "Bearer",
                "expires_in": state.tokens.ttl().num_seconds(),
            })),
        Ok(Err(RefreshError::Invalid)) => auth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "the refresh token is unknown, expired or revoked",
        ),
        Ok(Err(RefreshError::Reused)) => auth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "the refresh token was already used; the session has been revoked",
        ),
        Err(error) => {
            tracing::error!(error = ?error, "refreshing a session failed");
            auth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "try again later",
            )
        }
    }
}

async fn logout(body: web::Json<RefreshBody>, state: web::Data<AuthState>) -> HttpResponse {
    match sessions::logout(&state.db, &body.refresh_token, Utc::now()).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(error) => {
            tracing::error!(error = ?error, "logout failed");
            auth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "try again later",
            )
        }
    }
}

/// Bearer tokens issued by an outside OpenID provider (resource-server mode).
pub struct ExternalTokens {
    settings: ResourceServerSettings,
    clock_skew_secs: u64,
    jwks: Arc<JwksCache>,
    jwks_url: tokio::sync::OnceCell<String>,
}

/// Claims of an outside access token that dishpatch reads.
#[derive(Debug, Deserialize)]
struct ExternalClaims {
    sub: String,
    /// Expiry, seconds since the epoch (required by the validation); a `NumericDate` may have a
    /// fraction.
    exp: f64,
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    name: Option<String>,
    scope: Option<String>,
    scp: Option<Vec<String>>,
}

impl ExternalTokens {
    pub fn new(
        settings: ResourceServerSettings,
        clock_skew_secs: u64,
        jwks: Arc<JwksCache>,
    ) -> Self {
        Self {
            settings,
            clock_skew_secs,
            jwks,
            jwks_url: tokio::sync::OnceCell::new(),
        }
    }

    /// The viewer for an outside token; its user is created on first sight.
    pub async fn viewer(
        &self,
        db: &DatabaseConnection,
        token: &str,
    ) -> Result<Viewer, AuthFailure> {
        let issuer = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token)
            .ok()
            .and_then(|claims| claims["iss"].as_str().map(str::to_owned))
            .ok_or(AuthFailure::Invalid("not a JWT"))?;
        if issuer.trim_end_matches('/') != self.settings.issuer.trim_end_matches('/') {
            return Err(AuthFailure::Invalid("unknown issuer"));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Invalid("bad header"))?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(AuthFailure::Invalid("algorithm not accepted"));
        }
        let unavailable = |error: ProviderError| {
            tracing::warn!(%error, "the resource-server provider is unavailable");
            AuthFailure::Unavailable(anyhow::anyhow!("{error}").into())
        };
        let jwks_url = self
            .jwks_url
            .get_or_try_init(|| async {
                match &self.settings.jwks_url {
                    Some(url) => Ok(url.clone()),
                    None => discover(&self.jwks.http, &self.settings.issuer)
                        .await?
                        .jwks_uri
                        .ok_or_else(|| ProviderError("the provider publishes no JWKS".into())),
                }
            })
            .await
            .map_err(unavailable)?;
        let key = self
            .jwks
            .key(jwks_url, header.kid.as_deref())
            .await
            .map_err(unavailable)?
            .ok_or(AuthFailure::Invalid("unknown signing key"))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.leeway = self.clock_skew_secs;
        let claims = jsonwebtoken::decode::<ExternalClaims>(token, &key, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthFailure::Expired,
                _ => AuthFailure::Invalid("bad outside token"),
            })?
            .claims;
        let mut scopes = claims
            .scope
            .as_deref()
            .map(Scope::parse_list)
            .unwrap_or_default();
        scopes.extend(claims.scp.iter().flatten().filter_map(|s| Scope::parse(s)));
        let profile = ExternalProfile {
            provider: self.settings.provider_name.clone(),
            subject: claims.sub,
            email: claims.email.filter(|_| claims.email_verified),
            name: claims.name,
        };
        let user = users::find_or_create(db, &profile, Utc::now())
            .await
            .map_err(AuthFailure::Unavailable)?;
        Viewer::for_user(db, user, Some(scopes), Credential::External)
            .await
            .map(|viewer| viewer.expiring(expires_at(claims.exp)))
            .map_err(AuthFailure::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// Serves `status` and `body` to every request on a local port, counting the requests;
    /// returns the URL and the count.
    async fn serve(status: &'static str, body: String) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let served = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (served, body) = (served.clone(), body.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    served.fetch_add(1, Ordering::SeqCst);
                    // A slow provider, so that lookups overlap.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        (url, count)
    }

    fn cache() -> Arc<JwksCache> {
        Arc::new(JwksCache::new(reqwest::Client::new()))
    }

    /// Looks `kid` up in the set at `url` 20 times at once.
    async fn twenty_at_once(
        cache: &Arc<JwksCache>,
        url: &str,
        kid: &str,
    ) -> Vec<Result<Option<DecodingKey>, ProviderError>> {
        futures_util::future::join_all((0..20).map(|_| {
            let (cache, url, kid) = (cache.clone(), url.to_owned(), kid.to_owned());
            tokio::spawn(async move { cache.key(&url, Some(&kid)).await })
        }))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
    }

    #[test]
    fn numeric_dates_with_and_without_a_fraction_name_their_instant() {
        assert_eq!(
            expires_at(1_700_000_000.0),
            DateTime::from_timestamp(1_700_000_000, 0)
        );
        assert_eq!(
            expires_at(1_700_000_000.25),
            DateTime::from_timestamp(1_700_000_000, 250_000_000)
        );
        assert_eq!(expires_at(f64::NAN), None);
        assert_eq!(expires_at(1e300), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_that_miss_together_share_one_fetch() {
        let modulus = base64::Engine::encode(&base64::prelude::BASE64_URL_SAFE_NO_PAD, [0xA5; 256]);
        let jwks = json!({ "keys": [{ "kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig", "n": modulus, "e": "AQAB" }] });
        let (url, fetches) = serve("200 OK", jwks.to_string()).await;
        let cache = cache();
        let found = twenty_at_once(&cache, &url, "k1").await;
        assert!(found.iter().all(|key| matches!(key, Ok(Some(_)))));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // An unknown key right after: the set was just fetched, so no second fetch.
        assert!(matches!(cache.key(&url, Some("k2")).await, Ok(None)));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fetch_is_shared_and_remembered_for_a_while() {
        let (url, fetches) = serve("503 Service Unavailable", "{}".into()).await;
        let cache = cache();
        let found = twenty_at_once(&cache, &url, "k1").await;
        assert!(found.iter().all(Result::is_err));
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(cache.key(&url, Some("k1")).await.is_err());
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }
}
