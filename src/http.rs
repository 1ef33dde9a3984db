//! The HTTP surface: `/graphql` (POST, GET, GraphiQL, WebSocket), `/healthz`, `/readyz`, and
//! the middleware that gives every request a span and a request id.

use std::time::Instant;

use actix_web::{
    HttpMessage, HttpRequest, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{
        StatusCode,
        header::{self, HeaderName, HeaderValue},
    },
    middleware::Next,
    web,
};
use async_graphql::{
    BatchRequest, BatchResponse, Request,
    http::GraphiQLSource,
    parser::types::{DocumentOperations, OperationType},
};
use async_graphql_actix_web::GraphQLSubscription;
use futures_util::StreamExt;
use sea_orm::DatabaseConnection;
use serde_json::json;
use tracing::{Instrument, Span, field::Empty};

use crate::{
    auth::{
        Viewer,
        viewer::{AuthFailure, Authenticator},
    },
    config::Settings,
    db::StatementCounter,
    error::code,
    graphql::{AppSchema, Loaders},
};

/// Response header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Response header carrying how many SQL statements the request executed.
pub const SQL_STATEMENTS: HeaderName = HeaderName::from_static("x-sql-statements");

/// What every handler shares.
pub struct AppState {
    pub schema: AppSchema,
    pub db: DatabaseConnection,
    pub authenticator: std::sync::Arc<Authenticator>,
    pub graphiql: bool,
    pub max_body_bytes: usize,
    pub max_batch_size: usize,
}

impl AppState {
    /// State for `settings` over `db`.
    pub fn new(
        schema: AppSchema,
        db: DatabaseConnection,
        authenticator: std::sync::Arc<Authenticator>,
        settings: &Settings,
    ) -> Self {
        Self {
            schema,
            db,
            authenticator,
            graphiql: settings.graphiql,
            max_body_bytes: settings.max_body_bytes,
            max_batch_size: settings.max_batch_size,
        }
    }
}

/// Mounts every route.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(redirect_to_graphql))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .service(
            web::resource("/graphql")
                .route(web::post().to(graphql_post))
                .route(web::get().to(graphql_get))
                .default_service(web::to(method_not_allowed)),
        );
}

/// A GraphQL-shaped error response for requests that never reach execution.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "errors": [{ "message": message.into(), "extensions": { "code": code } }]
    }))
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
    match state.db.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "unavailable" }))
        }
    }
}

async fn method_not_allowed() -> HttpResponse {
    let mut response = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        "use GET or POST on /graphql",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

async fn graphql_post(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || mime.eq_ignore_ascii_case("application/graphql+json")
        });
    if !is_json {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_REQUEST,
            "send GraphQL requests as `Content-Type: application/json`",
        );
    }
    let body = match read_body(payload, state.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(error) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                format!("the body is not a GraphQL request: {error}"),
            );
        }
    };
    if batch.iter().any(|request| request.query.trim().is_empty()) {
        return missing_query();
    }
    if let BatchRequest::Batch(requests) = &batch {
        if state.max_batch_size == 0 {
            return error_response(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                "batched requests are turned off",
            );
        }
        if requests.len() > state.max_batch_size {
            return error_response(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                format!(
                    "a batch holds at most {} operations, this one has {}",
                    state.max_batch_size,
                    requests.len()
                ),
            );
        }
    }
    match viewer(&request, &state).await {
        Ok(viewer) => execute(&state, batch, viewer).await,
        Err(response) => response,
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
                error_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    code::INTERNAL_SERVER_ERROR,
                    "the credential cannot be checked right now; try again",
                )
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
        // A credential on the upgrade itself must be valid too (the socket then speaks for
        // that viewer unless `connection_init` carries its own).
        let upgrade_viewer = match viewer(&request, &state).await {
            Ok(viewer) => viewer,
            Err(response) => return response,
        };
        return subscribe(&request, payload, &state, upgrade_viewer);
    }
    if request.query_string().is_empty() && state.graphiql && accepts_html(&request) {
        return HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(
                GraphiQLSource::build()
                    .endpoint("/graphql")
                    .subscription_endpoint("/graphql")
                    .title("dishpatch GraphiQL")
                    .finish(),
            );
    }
    let mut graphql_request = match parse_query_string(request.query_string()) {
        Ok(graphql_request) => graphql_request,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, code::BAD_REQUEST, message),
    };
    if graphql_request.query.trim().is_empty() {
        return missing_query();
    }
    if is_mutation(&mut graphql_request) {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            "mutations are only accepted over POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    match viewer(&request, &state).await {
        Ok(viewer) => execute(&state, BatchRequest::Single(graphql_request), viewer).await,
        Err(response) => response,
    }
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

/// The error for a request without a document.
fn missing_query() -> HttpResponse {
    error_response(
        StatusCode::BAD_REQUEST,
        code::BAD_REQUEST,
        "the request has no `query`",
    )
}

/// Whether the operation `request` would run is a mutation. A document that does not parse
/// is left to execution, which reports it with its proper code.
fn is_mutation(request: &mut Request) -> bool {
    let name = request.operation_name.clone();
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation),
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name.as_str()),
        (DocumentOperations::Multiple(operations), None) => (operations.len() == 1)
            .then(|| operations.values().next())
            .flatten(),
    };
    operation.is_some_and(|operation| operation.node.ty == OperationType::Mutation)
}

fn is_websocket_upgrade(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

fn accepts_html(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The bearer credential of a WebSocket `connection_init` payload: `Authorization` (any case)
/// as `Bearer ...`, or a bare `token`. `Err` when one is there but is not text.
fn init_authorization(payload: &serde_json::Value) -> Result<Option<String>, ()> {
    let Some(object) = payload.as_object() else {
        return Ok(None);
    };
    let credential = object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.as_str().map(str::to_owned))
        .or_else(|| {
            object
                .get("token")
                .map(|value| value.as_str().map(|t| format!("Bearer {t}")))
        });
    match credential {
        None => Ok(None),
        Some(Some(credential)) => Ok(Some(credential)),
        Some(None) => Err(()),
    }
}

fn subscribe(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    upgrade_viewer: Viewer,
) -> HttpResponse {
    let db = state.db.clone();
    let authenticator = state.authenticator.clone();
    GraphQLSubscription::new(state.schema.clone())
        .on_connection_init(move |payload| async move {
            let refused = || async_graphql::Error::new("the credential is not valid");
            let viewer = match init_authorization(&payload).map_err(|()| refused())? {
                Some(credential) => authenticator
                    .viewer(Some(&credential))
                    .await
                    .map_err(|_| refused())?,
                None => upgrade_viewer,
            };
            // Loaders do not cache, so one set per connection never serves stale rows. (The
            // actix integration pings every 5 seconds and drops clients that stop answering;
            // no idle timeout is set, so a quiet subscriber waiting for its order stays.)
            let mut data = async_graphql::Data::default();
            data.insert(Loaders::new(&db, &StatementCounter::default()));
            data.insert(viewer);
            Ok(data)
        })
        .start(request, payload)
        .unwrap_or_else(|error| {
            error_response(
                StatusCode::BAD_REQUEST,
                code::BAD_REQUEST,
                error.to_string(),
            )
        })
}

/// Runs `batch` for `viewer` with fresh loaders, counting its SQL statements.
async fn execute(state: &AppState, batch: BatchRequest, viewer: Viewer) -> HttpResponse {
    let counter = StatementCounter::default();
    let with_loaders = |request: Request| {
        request
            .data(Loaders::new(&state.db, &counter))
            .data(viewer.clone())
    };
    let batch = match batch {
        BatchRequest::Single(request) => {
            let name = request.operation_name.as_deref().unwrap_or("anonymous");
            Span::current().record("graphql.operation", name);
            BatchRequest::Single(with_loaders(request))
        }
        BatchRequest::Batch(requests) => {
            Span::current().record("graphql.operation", "batch");
            BatchRequest::Batch(requests.into_iter().map(with_loaders).collect())
        }
    };
    let response: BatchResponse = counter.scope(state.schema.execute_batch(batch)).await;
    let statements = counter.get();
    Span::current().record("sql_statements", statements);
    let mut http = HttpResponse::Ok();
    http.insert_header((SQL_STATEMENTS, statements));
    match serde_json::to_vec(&response) {
        Ok(body) => http.content_type("application/json").body(body),
        Err(error) => {
            tracing::error!(%error, "response serialization failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_SERVER_ERROR,
                "internal server error",
            )
        }
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
    let mut response = next.call(request).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    span.record("status", status);
    span.record("latency_ms", started.elapsed().as_millis() as u64);
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
