//! One error type for the whole server and how it reaches clients.
//!
//! | variant          | `extensions.code`       | message sent              |
//! |------------------|-------------------------|---------------------------|
//! | `BadUserInput`   | `BAD_USER_INPUT`        | the explanation           |
//! | `NotFound`       | `NOT_FOUND`             | what was not found        |
//! | `Unauthenticated`| `UNAUTHENTICATED`       | fixed text                |
//! | `Forbidden`      | `FORBIDDEN`             | fixed text                |
//! | `Database`       | `INTERNAL_SERVER_ERROR` | fixed text; cause logged  |
//! | `Database`, unreachable | `SERVICE_UNAVAILABLE` (HTTP 503, `Retry-After`) | fixed text; cause logged |
//! | `Internal`       | `INTERNAL_SERVER_ERROR` | fixed text; cause logged  |
//!
//! `AppError` deliberately does not implement `Display`: async-graphql converts anything that
//! does into an error without a code, so `?` on an `AppError` in a resolver must go through the
//! `From` impl below, which always sets one.

use async_graphql::ErrorExtensions;

/// Stable error codes clients can match on (`extensions.code`).
pub mod code {
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const BAD_REQUEST: &str = "BAD_REQUEST";
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
}

/// Whether `error` says the database cannot be reached right now (down, restarting, no
/// connection free within the pool's timeout) rather than that a statement failed: clients
/// should retry those.
pub fn database_unavailable(error: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr, sqlx::Error as Sqlx};
    match error {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(inner))
        | DbErr::Exec(RuntimeErr::SqlxError(inner))
        | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            matches!(
                inner.as_ref(),
                Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed
            ) || matches!(inner.as_ref(), Sqlx::Database(database)
            // PostgreSQL shutting down or starting up (admin_shutdown, cannot_connect_now).
            if matches!(database.code().as_deref(), Some("57P01" | "57P02" | "57P03")))
        }
        _ => false,
    }
}

/// Everything that can go wrong while serving a request.
#[derive(Debug)]
pub enum AppError {
    /// The input cannot be used; the message says why and is shown to the client.
    BadUserInput(String),
    /// The named thing does not exist (or the viewer may not know that it does).
    NotFound(String),
    /// A credential is needed and none was given.
    Unauthenticated,
    /// The viewer is known but lacks the right.
    Forbidden,
    /// The database failed; the cause is logged, never sent.
    Database(sea_orm::DbErr),
    /// Anything else unexpected; the cause is logged, never sent.
    Internal(anyhow::Error),
}

impl AppError {
    /// Shorthand for `AppError::BadUserInput`.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadUserInput(message.into())
    }

    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput(_) => code::BAD_USER_INPUT,
            Self::NotFound(_) => code::NOT_FOUND,
            Self::Unauthenticated => code::UNAUTHENTICATED,
            Self::Forbidden => code::FORBIDDEN,
            Self::Database(error) if database_unavailable(error) => code::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => code::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text clients see; never an internal cause.
    pub fn public_message(&self) -> String {
        match self {
            Self::BadUserInput(message) => message.clone(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::Unauthenticated => "authentication required".into(),
            Self::Forbidden => "you are not allowed to do this".into(),
            Self::Database(error) if database_unavailable(error) => {
                "the database cannot be reached right now; retry shortly".into()
            }
            Self::Database(_) | Self::Internal(_) => "internal server error".into(),
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Database(error)
    }
}

impl From<anyhow::Error> for AppError {
    fn from(error: anyhow::Error) -> Self {
        Self::Internal(error)
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(error: AppError) -> Self {
        match &error {
            AppError::Database(cause) => tracing::error!(error = %cause, "database error"),
            AppError::Internal(cause) => tracing::error!(error = ?cause, "internal error"),
            _ => {}
        }
        let code = error.code();
        async_graphql::Error::new(error.public_message()).extend_with(|_, e| e.set("code", code))
    }
}

/// Results of services and loaders.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_are_not_sent_to_clients() {
        let error: async_graphql::Error =
            AppError::Database(sea_orm::DbErr::Custom("password=secret".into())).into();
        assert_eq!(error.message, "internal server error");
        let extensions = error.extensions.expect("a code is set");
        assert_eq!(
            extensions.get("code"),
            Some(&async_graphql::Value::from(code::INTERNAL_SERVER_ERROR))
        );
    }
}
