//! The HTTP surface: `/graphql` (POST, GET, GraphiQL, WebSocket), `/healthz`, `/readyz`, and
//! the middleware that gives every request a span and a request id.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use actix_web::{
    HttpMessage, HttpRequest, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    guard,
    http::{
        StatusCode,
        header::{self, HeaderName, HeaderValue},
    },
    middleware::Next,
    web,
};
use async_graphql::{BatchRequest, BatchResponse, Request, parser::types::OperationType};
use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use serde_json::json;
use tracing::{Instrument, Span, field::Empty};

use sha2::{Digest, Sha256};

use crate::{
    auth::{
        Viewer,
        viewer::{AuthFailure, Authenticator, Credential},
    },
    config::Settings,
    db::StatementCounter,
    error::code,
    graphql::{
        AppSchema, Loaders,
        extensions::operation_of,
        limits::{Admission, CostLedger},
    },
    metrics::METRICS,
    persisted::{PersistedQueries, PersistedQueryError, Registration},
    ratelimit::RateSubject,
    ws::SocketLimits,
};

/// Response header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Response header carrying how many SQL statements the request executed.
pub const SQL_STATEMENTS: HeaderName = HeaderName::from_static("x-sql-statements");

/// Response headers of the rate limiter (IETF `RateLimit` header fields draft).
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// What every handler shares.
pub struct AppState {
    pub schema: AppSchema,
    pub db: DatabaseConnection,
    pub authenticator: std::sync::Arc<Authenticator>,
    pub persisted: Arc<PersistedQueries>,
    /// Documents already parsed and validated (the schema's limits keep them).
    pub documents: Arc<crate::graphql::documents::Documents>,
    pub graphiql: bool,
    pub max_body_bytes: usize,
    pub max_batch_size: usize,
    pub execution_timeout: Option<Duration>,
    /// Turns to execute, shared out between the workers like the cost budget; `None` without
    /// a limit.
    pub execution_slots: Option<Arc<Admission>>,
    pub trust_forwarded_for: bool,
    pub sockets: SocketLimits,
    pub query_limits: crate::config::QueryLimits,
    pub metrics_token: Option<crate::config::Secret>,
    /// `cors_allowed_origins`: when set, browsers' WebSocket upgrades must come from one of
    /// them (or the server's own origin).
    pub allowed_origins: Vec<String>,
    /// Set when the server begins to stop.
    pub drain: Arc<crate::shutdown::Drain>,
    /// Photo storage (served on `/media`) and upload limits.
    pub media: crate::media::Media,
}

/// What the HTTP layer shares with the schema.
pub struct Shared {
    /// The allow-list and automatic persisted queries.
    pub persisted: Arc<PersistedQueries>,
    /// Documents already parsed and validated.
    pub documents: Arc<crate::graphql::documents::Documents>,
    /// Photo storage and upload limits.
    pub media: crate::media::Media,
}

impl AppState {
    /// State for `settings` over `db`.
    pub fn new(
        schema: AppSchema,
        db: DatabaseConnection,
        authenticator: std::sync::Arc<Authenticator>,
        shared: Shared,
        settings: &Settings,
        workers: usize,
    ) -> Self {
        let Shared {
            persisted,
            documents,
            media,
        } = shared;
        Self {
            schema,
            db,
            authenticator,
            persisted,
            documents,
            graphiql: settings.graphiql_enabled(),
            max_body_bytes: settings.max_body_bytes,
            max_batch_size: settings.max_batch_size,
            execution_slots: Admission::new(settings.limits.max_concurrent_requests, workers)
                .map(Arc::new),
            execution_timeout: (settings.limits.execution_timeout_ms > 0)
                .then(|| Duration::from_millis(settings.limits.execution_timeout_ms)),
            trust_forwarded_for: settings.rate_limit.trust_forwarded_for,
            sockets: SocketLimits::default(),
            query_limits: settings.limits.clone(),
            metrics_token: settings.metrics_token.clone(),
            allowed_origins: settings.cors_allowed_origins.clone(),
            drain: Arc::default(),
            media,
        }
    }
}

/// The media type of a response, chosen from the request's `Accept` as the GraphQL-over-HTTP
/// spec describes: `application/graphql-response+json` answers request errors with 4xx and no
/// `data`; `application/json` (the default) answers every well-formed request with 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    GraphQLResponse,
    Json,
}

impl MediaType {
    fn content_type(self) -> &'static str {
        match self {
            Self::GraphQLResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }

    /// What `Accept` asks for; `None` when it accepts neither JSON media type.
    fn negotiate(request: &HttpRequest) -> Option<Self> {
        let Some(accept) = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .filter(|accept| !accept.trim().is_empty())
        else {
            return Some(Self::Json);
        };
        // The highest quality wins; among equals, the first listed. Wildcards mean JSON.
        let mut best: Option<(f32, Self)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let mime = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let mut quality = 1.0_f32;
            let mut charset_ok = true;
            for parameter in parts {
                let (name, value) = parameter.split_once('=').unwrap_or((parameter, ""));
                match name.trim().to_ascii_lowercase().as_str() {
                    "q" => quality = value.trim().parse().unwrap_or(0.0),
                    "charset" => charset_ok = value.trim().eq_ignore_ascii_case("utf-8"),
                    _ => {}
                }
            }
            let media = match mime.as_str() {
                "application/graphql-response+json" => Self::GraphQLResponse,
                "application/json" | "application/*" | "*/*" => Self::Json,
                _ => continue,
            };
            if charset_ok && quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, media));
            }
        }
        best.map(|(_, media)| media)
    }
}

/// Answers a request whose `Accept` allows no JSON media type.
fn not_acceptable() -> HttpResponse {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        code::BAD_REQUEST,
        "accept `application/graphql-response+json` or `application/json`",
    )
}

/// CORS for the configured origins: they may call the API from a browser with credentials in
/// headers (never cookies) and read the rate-limit and request-id headers. Without origins,
/// no CORS headers are sent and browsers keep other sites out.
pub fn cors(origins: &[String], allowed_headers: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers(
            allowed_headers
                .iter()
                .filter_map(|name| HeaderName::try_from(name.as_str()).ok()),
        )
        .expose_headers([
            REQUEST_ID,
            SQL_STATEMENTS,
            RATELIMIT_LIMIT,
            RATELIMIT_REMAINING,
            RATELIMIT_RESET,
            RATELIMIT_POLICY,
            header::RETRY_AFTER,
        ])
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Mounts every route.
pub fn routes(config: &mut web::ServiceConfig) {
    // HEAD is answered wherever GET is (the same headers, no body), as probes and link
    // checkers expect.
    let get = || web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
    config
        .route("/", get().to(redirect_to_graphql))
        .route("/healthz", get().to(healthz))
        .route("/readyz", get().to(readyz))
        .route("/metrics", get().to(metrics))
        .service(
            web::resource("/graphql")
                .route(web::post().to(graphql_post))
                .route(get().to(graphql_get))
                .default_service(web::to(method_not_allowed)),
        )
        .route("/graphiql/{file}", get().to(graphiql_asset))
        .route("/media/{key}", get().to(media_file));
}

/// A GraphQL-shaped error response for requests that never reach execution.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "errors": [{ "message": message.into(), "extensions": { "code": code } }]
    }))
}

/// A request error in the negotiated media type.
fn refuse(
    media: MediaType,
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
) -> HttpResponse {
    let mut response = error_response(status, code, message);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type()),
    );
    response
}

/// GraphiQL's files, where GraphiQL is served.
async fn graphiql_asset(
    request: HttpRequest,
    file: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if !state.graphiql {
        return HttpResponse::NotFound().finish();
    }
    crate::graphiql::asset(request, file).await
}

async fn redirect_to_graphql() -> HttpResponse {
    HttpResponse::TemporaryRedirect()
        .insert_header((header::LOCATION, "/graphql"))
        .finish()
}

/// The process is up.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The process can serve: the database answers.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.drain.is_draining() {
        return HttpResponse::ServiceUnavailable().json(json!({ "status": "draining" }));
    }
    // A probe wants an answer, not a wait: a database that does not answer within a second is
    // as good as down (the pool would otherwise wait its whole acquire timeout).
    match tokio::time::timeout(READY_WITHIN, state.db.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" }))
        }
        Err(_) => {
            tracing::warn!("readiness check: the database did not answer within a second");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" }))
        }
    }
}

/// How long `/readyz` waits for the database.
const READY_WITHIN: Duration = Duration::from_secs(1);

/// Prometheus metrics; with `metrics_token` set, only for `Authorization: Bearer <token>`.
async fn metrics(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(token) = &state.metrics_token {
        let expected = format!("Bearer {}", token.expose());
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let matches = given.len() == expected.len()
            && given
                .iter()
                .zip(expected.as_bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        if !matches {
            return unauthenticated("`/metrics` needs the metrics token");
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(METRICS.render(&state.db))
}

async fn method_not_allowed() -> HttpResponse {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        "use GET or POST on /graphql",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    response
}

async fn graphql_post(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(media) = MediaType::negotiate(&request) else {
        return not_acceptable();
    };
    // Only JSON bodies run, and multipart ones (file uploads) that carry a header browsers
    // only send cross-site after a CORS preflight. Browsers send text/plain, form and
    // multipart bodies cross-site without one, so refusing them here is what stops
    // cross-site request forgery.
    let multipart = is_multipart(&request);
    if multipart && !request.headers().contains_key(UPLOAD_PREFLIGHT_HEADER) {
        return refuse(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_REQUEST,
            "multipart requests (file uploads) need an `Apollo-Require-Preflight` header",
        );
    }
    if !multipart && let Err(message) = json_content_type(&request) {
        return refuse(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_REQUEST,
            message,
        );
    }
    let limits = &state.media.limits;
    let limit = if multipart {
        state.max_body_bytes + limits.max_file_bytes.saturating_mul(limits.max_files)
    } else {
        state.max_body_bytes
    };
    let body = match read_body(payload, limit).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if body.is_empty() {
        return refuse(
            media,
            StatusCode::BAD_REQUEST,
            code::BAD_REQUEST,
            "the request has no body",
        );
    }
    let parsed = if multipart {
        read_multipart(&request, &body, limits).await
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| format!("the body is not a GraphQL request: {error}"))
    };
    let batch: BatchRequest = match parsed {
        Ok(batch) => batch,
        Err(message) => {
            return refuse(media, StatusCode::BAD_REQUEST, code::BAD_REQUEST, message);
        }
    };
    let mut requests = match batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(mut requests) => {
            if state.max_batch_size == 0 {
                return refuse(
                    media,
                    StatusCode::BAD_REQUEST,
                    code::BAD_REQUEST,
                    "batched requests are turned off",
                );
            }
            if requests.is_empty() {
                return refuse(
                    media,
                    StatusCode::BAD_REQUEST,
                    code::BAD_REQUEST,
                    "the batch is empty",
                );
            }
            if requests.len() > state.max_batch_size {
                return refuse(
                    media,
                    StatusCode::BAD_REQUEST,
                    code::QUERY_TOO_COMPLEX,
                    format!(
                        "a batch holds at most {} operations, this one has {}",
                        state.max_batch_size,
                        requests.len()
                    ),
                );
            }
            return match prepare_all(&state, media, &mut requests).await {
                Ok(prepared) => {
                    run(
                        &request,
                        &state,
                        media,
                        BatchRequest::Batch(requests),
                        prepared,
                    )
                    .await
                }
                Err(response) => response,
            };
        }
    };
    match prepare_all(&state, media, &mut requests).await {
        Ok(prepared) => {
            let single = requests.pop().expect("one request");
            run(
                &request,
                &state,
                media,
                BatchRequest::Single(single),
                prepared,
            )
            .await
        }
        Err(response) => response,
    }
}

/// The header a multipart request must carry: one a browser cannot add to a cross-site request
/// without a CORS preflight (the name Apollo Client's and Apollo Router's docs use).
const UPLOAD_PREFLIGHT_HEADER: &str = "apollo-require-preflight";

/// Whether the body is `multipart/form-data` (the GraphQL multipart request spec).
fn is_multipart(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// The operations of a multipart request, with its files in place of their variables; at
/// most `limits.max_files` files of at most `limits.max_file_bytes` each.
async fn read_multipart(
    request: &HttpRequest,
    body: &[u8],
    limits: &crate::config::MediaSettings,
) -> Result<BatchRequest, String> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let options = async_graphql::http::MultipartOptions::default()
        .max_file_size(limits.max_file_bytes)
        .max_num_files(limits.max_files);
    let batch = async_graphql::http::receive_batch_body(content_type, body, options)
        .await
        .map_err(|error| format!("the multipart request cannot be read: {error}"))?;
    let files: usize = batch.iter().map(|request| request.uploads.len()).sum();
    if files > limits.max_files {
        return Err(format!(
            "a request carries at most {} files, this one has {files}",
            limits.max_files
        ));
    }
    Ok(batch)
}

/// Serves a stored photo: immutable (its key is its content), as JPEG, never sniffed.
async fn media_file(key: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let key = key.into_inner();
    if !crate::media::is_key(&key) {
        return HttpResponse::NotFound().finish();
    }
    match state.media.store.get(&key).await {
        Ok(Some(bytes)) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "image/jpeg"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'"))
            .body(bytes),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(error) => {
            tracing::error!(%error, key, "cannot read a photo");
            HttpResponse::InternalServerError().finish()
        }
    }
}

/// `Ok` for `application/json` (or the older `application/graphql+json`) in UTF-8; the
/// reason to refuse otherwise.
fn json_content_type(request: &HttpRequest) -> Result<(), &'static str> {
    const EXPECTED: &str = "send GraphQL requests as `Content-Type: application/json`";
    let value = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .ok_or(EXPECTED)?;
    let mut parts = value.split(';');
    let mime = parts.next().unwrap_or_default().trim();
    if !(mime.eq_ignore_ascii_case("application/json")
        || mime.eq_ignore_ascii_case("application/graphql+json"))
    {
        return Err(EXPECTED);
    }
    for parameter in parts {
        if let Some((name, value)) = parameter.split_once('=')
            && name.trim().eq_ignore_ascii_case("charset")
            && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
        {
            return Err("GraphQL requests are read as UTF-8 only");
        }
    }
    Ok(())
}

/// What `prepare_all` found out about a request's operations.
struct Prepared {
    /// Documents sent with their hash, per operation, to store once they have run.
    registrations: Vec<Option<Registration>>,
    /// Whether an operation is a mutation.
    mutates: bool,
}

/// Resolves persisted queries, checks that every operation has a document within the size
/// limits, and finds the mutations. The documents are parsed here once; the schema reuses them.
async fn prepare_all(
    state: &AppState,
    media: MediaType,
    requests: &mut [Request],
) -> Result<Prepared, HttpResponse> {
    let mut prepared = Prepared {
        registrations: Vec::with_capacity(requests.len()),
        mutates: false,
    };
    for request in requests.iter_mut() {
        match state.persisted.resolve(request).await {
            Ok(registration) => prepared.registrations.push(registration),
            Err(error) => {
                let status = match error {
                    PersistedQueryError::NotFound => request_error_status(media),
                    PersistedQueryError::NotInList => StatusCode::FORBIDDEN,
                    _ => StatusCode::BAD_REQUEST,
                };
                return Err(refuse(media, status, error.code(), error.message()));
            }
        }
        if request.query.trim().is_empty() {
            return Err(refuse(
                media,
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                "the request has no `query`",
            ));
        }
        // The size limits come before anything parses the document.
        if let Err(error) = crate::graphql::limits::check_text(&state.query_limits, &request.query)
        {
            let mut response = HttpResponse::build(request_error_status(media));
            response.insert_header((header::CONTENT_TYPE, media.content_type()));
            return Err(response.json(json!({ "errors": [error] })));
        }
        prepared.mutates |= is_mutation(&state.documents, request);
    }
    Ok(prepared)
}

/// The status of a GraphQL request error (one that stops before execution): 400 with
/// `application/graphql-response+json`, 200 with `application/json`, as the spec asks.
fn request_error_status(media: MediaType) -> StatusCode {
    match media {
        MediaType::GraphQLResponse => StatusCode::BAD_REQUEST,
        MediaType::Json => StatusCode::OK,
    }
}

/// Resolves the viewer and runs `batch`.
async fn run(
    request: &HttpRequest,
    state: &AppState,
    media: MediaType,
    batch: BatchRequest,
    prepared: Prepared,
) -> HttpResponse {
    match viewer(request, state).await {
        Ok(viewer) => {
            let subject = rate_subject(request, &viewer, state.trust_forwarded_for);
            let request_id = request
                .extensions()
                .get::<RequestId>()
                .cloned()
                .unwrap_or_else(|| RequestId(String::new()));
            let response =
                execute(state, batch, viewer, subject, request_id, media, &prepared).await;
            register_persisted(state, prepared, &response).await;
            response.http
        }
        Err(response) => response,
    }
}

/// Stores the documents sent with their hash whose operations passed the limits and ran.
async fn register_persisted(state: &AppState, prepared: Prepared, response: &Executed) {
    for (registration, ran) in prepared.registrations.into_iter().zip(&response.ran) {
        if let Some(registration) = registration
            && *ran
        {
            state.persisted.register(registration).await;
        }
    }
}

/// An executed request: its HTTP response and, per operation, whether it got past the
/// request errors (parsing, validation, limits) to run.
struct Executed {
    http: HttpResponse,
    ran: Vec<bool>,
}

/// Who pays for a request: its API token, its user, or for anonymous callers the address.
fn rate_subject(request: &HttpRequest, viewer: &Viewer, trust_forwarded_for: bool) -> RateSubject {
    let credential = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    subject_for(
        viewer,
        credential,
        client_address(request, trust_forwarded_for),
    )
}

/// Who pays for what `viewer` asks with `credential`. An API token is named by a digest of the
/// token itself, so other spellings of the same header share its budget.
fn subject_for(viewer: &Viewer, credential: &str, address: String) -> RateSubject {
    match (viewer.credential(), viewer.user()) {
        (Credential::ApiToken, _) => {
            let credential = credential.trim();
            let token = credential
                .split_once(char::is_whitespace)
                .map_or(credential, |(_, token)| token.trim());
            RateSubject::Token(hex::encode(&Sha256::digest(token.as_bytes())[..12]))
        }
        (_, Some(user)) => RateSubject::User(user.id),
        (_, None) => RateSubject::Address(address),
    }
}

/// The client's address for rate limits: the peer's, or behind a trusted proxy the last
/// `X-Forwarded-For` entry (the one that proxy added; earlier ones are the client's to
/// choose). IPv6 addresses count per /64, the block one subscriber usually has.
fn client_address(request: &HttpRequest, trust_forwarded_for: bool) -> String {
    let forwarded = trust_forwarded_for
        .then(|| {
            request
                .headers()
                .get_all(HeaderName::from_static("x-forwarded-for"))
                .last()
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.rsplit(',').next())
                .and_then(|last| last.trim().parse::<std::net::IpAddr>().ok())
        })
        .flatten();
    match forwarded.or_else(|| request.peer_addr().map(|peer| peer.ip())) {
        Some(std::net::IpAddr::V4(ip)) => ip.to_string(),
        Some(std::net::IpAddr::V6(ip)) => {
            if let Some(ip) = ip.to_ipv4_mapped() {
                ip.to_string()
            } else {
                let s = ip.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
        None => "unknown".into(),
    }
}

/// The viewer of `request`; a credential that is present but not valid ends the request with
/// 401 `UNAUTHENTICATED`, whatever it asked for.
async fn viewer(request: &HttpRequest, state: &AppState) -> Result<Viewer, HttpResponse> {
    let authorization = match request.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| unauthenticated("the Authorization header is not text"))?,
        ),
    };
    state
        .authenticator
        .viewer(authorization)
        .await
        .map_err(|failure| match failure {
            AuthFailure::Invalid(reason) => {
                tracing::info!(reason, "credential refused");
                unauthenticated("the credential is not valid")
            }
            AuthFailure::Expired => unauthenticated("the credential has expired"),
            AuthFailure::Unavailable(error) => {
                tracing::error!(error = ?error, "checking a credential failed");
                let mut response = error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::SERVICE_UNAVAILABLE,
                    "the credential cannot be checked right now; retry shortly",
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(RETRY_UNAVAILABLE_SECS),
                );
                response
            }
        })
}

fn unauthenticated(message: &str) -> HttpResponse {
    let mut response = error_response(StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, HttpResponse> {
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::BAD_REQUEST,
            format!("the request body is limited to {limit} bytes"),
        )
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| {
            if matches!(error, actix_web::error::PayloadError::Overflow) {
                too_large()
            } else {
                error_response(
                    StatusCode::BAD_REQUEST,
                    code::BAD_REQUEST,
                    error.to_string(),
                )
            }
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn graphql_get(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if is_websocket_upgrade(&request) {
        if !origin_allowed(&request, &state.allowed_origins) {
            return error_response(
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "WebSocket connections are accepted only from the allowed origins",
            );
        }
        // A credential on the upgrade itself must be valid too (the socket then speaks for
        // that viewer unless `connection_init` carries its own).
        let upgrade_viewer = match viewer(&request, &state).await {
            Ok(viewer) => viewer,
            Err(response) => return response,
        };
        return subscribe(&request, payload, &state, upgrade_viewer);
    }
    if request.query_string().is_empty() && state.graphiql && accepts_html(&request) {
        return crate::graphiql::page();
    }
    let Some(media) = MediaType::negotiate(&request) else {
        return not_acceptable();
    };
    let mut graphql_request = match parse_query_string(request.query_string()) {
        Ok(graphql_request) => graphql_request,
        Err(message) => return refuse(media, StatusCode::BAD_REQUEST, code::BAD_REQUEST, message),
    };
    let prepared =
        match prepare_all(&state, media, std::slice::from_mut(&mut graphql_request)).await {
            Ok(prepared) => prepared,
            Err(response) => return response,
        };
    // Checked after persisted queries are resolved, so that a hash cannot smuggle a mutation.
    if prepared.mutates {
        let mut response = refuse(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            "mutations are only accepted over POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    run(
        &request,
        &state,
        media,
        BatchRequest::Single(graphql_request),
        prepared,
    )
    .await
}

/// The parameters of a GraphQL request sent with GET, named as the GraphQL-over-HTTP spec
/// names them (async-graphql's own parser misses `operationName`).
#[derive(serde::Deserialize)]
struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

fn parse_query_string(query_string: &str) -> Result<Request, String> {
    let params = web::Query::<GetParams>::from_query(query_string)
        .map_err(|error| format!("the query string is not a GraphQL request: {error}"))?
        .into_inner();
    let mut request = Request::new(params.query.unwrap_or_default());
    request.operation_name = params.operation_name;
    if let Some(variables) = params.variables {
        let variables = serde_json::from_str(&variables)
            .map_err(|error| format!("`variables` is not a JSON object: {error}"))?;
        request.variables = async_graphql::Variables::from_json(variables);
    }
    if let Some(extensions) = params.extensions {
        request.extensions = serde_json::from_str(&extensions)
            .map_err(|error| format!("`extensions` is not a JSON object: {error}"))?;
    }
    Ok(request)
}

/// Whether the operation `request` would run is a mutation. A document that does not parse
/// is left to execution, which reports it with its proper code. A document seen before is not
/// parsed again: the schema's limits take it from `documents`.
fn is_mutation(documents: &crate::graphql::documents::Documents, request: &mut Request) -> bool {
    if let Some(operation) = crate::graphql::documents::DocumentKey::of(request)
        .and_then(|key| documents.operation(&key))
    {
        return operation == Some(OperationType::Mutation);
    }
    let name = request.operation_name.clone();
    request.parsed_query().is_ok_and(|document| {
        operation_of(document, name.as_deref()).is_some_and(|(_, ty)| ty == OperationType::Mutation)
    })
}

fn is_websocket_upgrade(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

/// Cross-site WebSocket hijacking: a page elsewhere may open a socket to any server (there is
/// no preflight), so with `cors_allowed_origins` set a browser's upgrade (which always carries
/// `Origin`) must come from one of them or from the server's own origin. Clients that are not
/// browsers send no `Origin` and are let through.
fn origin_allowed(request: &HttpRequest, allowed: &[String]) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let info = request.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host());
    origin == own || allowed.iter().any(|allowed| allowed == origin)
}

fn accepts_html(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The bearer credential of a WebSocket `connection_init` payload: `Authorization` (any case)
/// as `Bearer ...`, a bare `token`, or `Authorization` inside a `headers` object (the shape
/// several clients send). `Err` with the reason when one is there but cannot be used, or when a field
/// looks like a credential dishpatch does not read: a socket never runs as anonymous by
/// silently ignoring what the client meant as its credential.
fn init_authorization(payload: &serde_json::Value) -> Result<Option<String>, String> {
    let Some(object) = payload.as_object() else {
        return Ok(None);
    };
    let mut found = None;
    for (key, value) in object {
        let credential = if key.eq_ignore_ascii_case("authorization") {
            value.as_str().map(str::to_owned)
        } else if key == "token" {
            value.as_str().map(|token| format!("Bearer {token}"))
        } else if key.eq_ignore_ascii_case("headers") {
            let Some(headers) = value.as_object() else {
                return Err("`headers` must be an object".into());
            };
            match headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("authorization"))
            {
                Some((_, value)) => value.as_str().map(str::to_owned),
                None => continue,
            }
        } else if looks_like_credential(key) {
            return Err(format!(
                "unknown credential field `{}`: send {{\"Authorization\": \"Bearer …\"}}",
                key.chars().take(40).collect::<String>()
            ));
        } else {
            continue;
        };
        let Some(credential) = credential else {
            return Err("the credential must be a string".into());
        };
        if found.replace(credential).is_some() {
            return Err("more than one credential".into());
        }
    }
    Ok(found)
}

/// A `connection_init` field name that a client means as a credential (`authToken`,
/// `accessToken`, `auth`, `jwt`, …).
fn looks_like_credential(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["auth", "token", "bearer", "jwt", "session"]
        .iter()
        .any(|word| key.contains(word))
}

/// The check each operation on a socket opened with `credential` goes through
/// (`ws::Reauthenticate`): the same as an HTTP request's, with the same answers.
fn reauthenticate(
    authenticator: std::sync::Arc<Authenticator>,
    credential: String,
) -> crate::ws::Reauthenticate {
    crate::ws::Reauthenticate(std::sync::Arc::new(move || {
        let (authenticator, credential) = (authenticator.clone(), credential.clone());
        Box::pin(async move {
            authenticator
                .viewer(Some(&credential))
                .await
                .map_err(socket_credential_refused)
        })
    }))
}

/// Why an operation on a socket does not run: its credential no longer counts, or cannot be
/// checked right now.
fn socket_credential_refused(failure: AuthFailure) -> async_graphql::Error {
    use async_graphql::ErrorExtensions as _;
    let (code, message) = match failure {
        AuthFailure::Invalid(reason) => {
            tracing::info!(reason, "socket credential refused");
            (
                code::UNAUTHENTICATED,
                "the credential this socket was opened with is no longer valid",
            )
        }
        AuthFailure::Expired => (
            code::UNAUTHENTICATED,
            "the credential this socket was opened with has expired",
        ),
        AuthFailure::Unavailable(error) => {
            tracing::error!(error = ?error, "checking a socket's credential failed");
            (
                code::SERVICE_UNAVAILABLE,
                "the credential cannot be checked right now; retry shortly",
            )
        }
    };
    async_graphql::Error::new(message).extend_with(|_, extensions| extensions.set("code", code))
}

fn subscribe(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    upgrade_viewer: Viewer,
) -> HttpResponse {
    let db = state.db.clone();
    let authenticator = state.authenticator.clone();
    let address = client_address(request, state.trust_forwarded_for);
    let upgrade_credential = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let slots = state.execution_slots.clone();
    let on_init = move |payload: serde_json::Value| async move {
        let refused = || async_graphql::Error::new("the credential is not valid");
        let (viewer, credential) = if let Some(credential) =
            init_authorization(&payload).map_err(async_graphql::Error::new)?
        {
            let viewer = authenticator
                .viewer(Some(&credential))
                .await
                .map_err(|_| refused())?;
            (viewer, credential)
        } else {
            (upgrade_viewer, upgrade_credential)
        };
        let subject = subject_for(&viewer, &credential, address);
        let expires_at = viewer.expires_at();
        // Loaders do not cache, so one set per connection never serves stale rows.
        let mut data = async_graphql::Data::default();
        data.insert(Loaders::new(&db, &StatementCounter::default()));
        if !credential.is_empty() {
            data.insert(reauthenticate(authenticator, credential));
        }
        data.insert(viewer);
        data.insert(subject);
        data.insert(crate::ws::StartSlots(slots));
        Ok((data, expires_at))
    };
    crate::ws::serve(
        request,
        payload,
        crate::ws::AdmittedSchema {
            executor: state.schema.clone(),
            slots: state.execution_slots.clone(),
        },
        state.sockets,
        state.drain.going_away(),
        on_init,
    )
}

/// Runs `batch` for `viewer` with fresh loaders, counting its SQL statements and its cost.
async fn execute(
    state: &AppState,
    batch: BatchRequest,
    viewer: Viewer,
    subject: RateSubject,
    request_id: RequestId,
    media: MediaType,
    prepared: &Prepared,
) -> Executed {
    let counter = StatementCounter::default();
    let ledger = CostLedger::default();
    let with_data = |request: Request| {
        request
            .data(Loaders::new(&state.db, &counter))
            .data(viewer.clone())
            .data(subject.clone())
            .data(ledger.clone())
    };
    let batch = match batch {
        BatchRequest::Single(request) => {
            let name = request.operation_name.as_deref().unwrap_or("anonymous");
            Span::current().record("graphql.operation", name);
            BatchRequest::Single(with_data(request))
        }
        BatchRequest::Batch(requests) => {
            Span::current().record("graphql.operation", "batch");
            BatchRequest::Batch(requests.into_iter().map(with_data).collect())
        }
    };
    // Waiting for a turn happens before anything is loaded, so queued requests hold no rows.
    let _turn = match &state.execution_slots {
        Some(slots) => Some(slots.admit(1).await),
        None => None,
    };
    let running = counter.scope(state.schema.execute_batch(batch));
    // Mutations are not cut short: stopped between its commit and its answer, a mutation
    // would have happened while its client was told it had not.
    let response = match state.execution_timeout {
        Some(limit) if !prepared.mutates => tokio::time::timeout(limit, running).await.ok(),
        _ => Some(running.await),
    };
    let statements = counter.get();
    Span::current().record("sql_statements", statements);
    METRICS
        .sql_statements_per_request
        .observe(f64::from(statements));
    let Some(mut response) = response else {
        let limit = state.execution_timeout.unwrap_or_default();
        let mut http = refuse(
            media,
            StatusCode::SERVICE_UNAVAILABLE,
            code::QUERY_TOO_COMPLEX,
            format!(
                "the request ran longer than the limit of {} ms and was stopped",
                limit.as_millis()
            ),
        );
        http.headers_mut().insert(SQL_STATEMENTS, statements.into());
        return Executed {
            http,
            ran: Vec::new(),
        };
    };
    let ran = match &response {
        BatchResponse::Single(single) => vec![!is_request_error(single)],
        BatchResponse::Batch(responses) => responses.iter().map(|r| !is_request_error(r)).collect(),
    };
    let status = match &mut response {
        BatchResponse::Single(single) => {
            mention_request_id(single, &request_id);
            if is_rate_limited(single) {
                StatusCode::TOO_MANY_REQUESTS
            } else if has_code(single, code::SERVICE_UNAVAILABLE) {
                StatusCode::SERVICE_UNAVAILABLE
            } else if is_request_error(single) {
                request_error_status(media)
            } else {
                StatusCode::OK
            }
        }
        BatchResponse::Batch(responses) => {
            for single in responses.iter_mut() {
                mention_request_id(single, &request_id);
            }
            StatusCode::OK
        }
    };
    let mut http = HttpResponse::build(status);
    http.insert_header((SQL_STATEMENTS, statements));
    http.insert_header((header::CONTENT_TYPE, media.content_type()));
    rate_limit_headers(&mut http, &ledger);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        http.insert_header((header::RETRY_AFTER, RETRY_UNAVAILABLE_SECS));
    }
    let body = match (&response, media) {
        // A request error carries no `data` entry in graphql-response+json.
        (BatchResponse::Single(single), MediaType::GraphQLResponse) if is_request_error(single) => {
            serde_json::to_vec(&json!({
                "errors": single.errors,
                "extensions": single.extensions,
            }))
        }
        _ => serde_json::to_vec(&response),
    };
    let http = match body {
        Ok(body) => http.body(body),
        Err(error) => {
            tracing::error!(%error, "response serialization failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_SERVER_ERROR,
                "internal server error",
            )
        }
    };
    Executed { http, ran }
}

/// Whether `response` is a request error: it stopped before execution, so it has no data and
/// its errors point at no field.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

fn is_rate_limited(response: &async_graphql::Response) -> bool {
    has_code(response, code::RATE_LIMITED)
}

/// Whether an error of `response` has `code`.
fn has_code(response: &async_graphql::Response, code: &str) -> bool {
    response.errors.iter().any(|error| {
        error.extensions.as_ref().and_then(|e| e.get("code"))
            == Some(&async_graphql::Value::from(code))
    })
}

/// What `Retry-After` says when the database cannot be reached: long enough for a restart or
/// a fail-over to make progress, short enough that clients come back soon.
const RETRY_UNAVAILABLE_SECS: u64 = 2;

/// Gives internal errors the request id, so a report from a client leads to the log.
fn mention_request_id(response: &mut async_graphql::Response, request_id: &RequestId) {
    let internal = async_graphql::Value::from(code::INTERNAL_SERVER_ERROR);
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code") == Some(&internal) {
            error.message = format!("internal server error (request id {})", request_id.0);
            extensions.set("requestId", request_id.0.clone());
        }
    }
}

/// `RateLimit-*` headers from what the request's operations cost.
fn rate_limit_headers(http: &mut actix_web::HttpResponseBuilder, ledger: &CostLedger) {
    let reports = ledger.0.lock().expect("unpoisoned");
    // Batched operations run concurrently; the one charged last is not the one with the
    // least left.
    let Some(last) = reports.iter().min_by_key(|report| report.remaining) else {
        return;
    };
    http.insert_header((RATELIMIT_LIMIT, last.limit));
    http.insert_header((RATELIMIT_REMAINING, last.remaining));
    http.insert_header((RATELIMIT_RESET, last.reset_secs));
    http.insert_header((
        RATELIMIT_POLICY,
        format!("{};w={}", last.limit, last.window_secs),
    ));
    if reports.iter().any(|report| !report.allowed) {
        http.insert_header((header::RETRY_AFTER, last.reset_secs));
    }
}

/// A request id from the client when it looks sane, else a new one.
fn request_id(request: &ServiceRequest) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The request id of the current request, for handlers that mention it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Wraps each request in a span with its id, method, path, GraphQL operation and outcome, and
/// echoes the id in the `X-Request-Id` response header.
pub async fn request_span(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(&request);
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.path(),
        graphql.operation = Empty,
        sql_statements = Empty,
        status = Empty,
        latency_ms = Empty,
    );
    request.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let draining = request
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| state.drain.is_draining());
    let mut response = next.call(request).instrument(span.clone()).await?;
    if draining {
        // Stopping: this connection is not to be used again (see `shutdown`).
        response
            .response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.record("status", status);
    span.record("latency_ms", elapsed.as_millis() as u64);
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    METRICS
        .http_requests
        .with_label_values(&[
            route.as_str(),
            response.request().method().as_str(),
            &status.to_string(),
        ])
        .inc();
    METRICS
        .http_duration
        .with_label_values(&[route.as_str()])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!("request failed");
        } else {
            tracing::info!("request finished");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}
