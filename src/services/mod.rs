//! Business rules and database access outside DataLoaders. Services take a connection (or a
//! transaction) and plain arguments, so they are testable without GraphQL.

pub mod addresses;
pub mod api_tokens;
pub mod menu_import;
pub mod menu_options;
pub mod menus;
pub mod orders;
pub mod photos;
pub mod restaurant_settings;
pub mod restaurants;
pub mod sessions;
pub mod users;
pub mod webhooks;

/// A problem with the input that the user can fix; the service changed nothing. Mutations
/// report these in their payload's `userErrors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// Path to the input field at fault, as the API names it, below the mutation's `input`:
    /// `["deliveryAddress"]`, or `["lines", "2", "quantity"]` for one entry of a list.
    pub field: Vec<String>,
    pub message: String,
    pub code: ErrorCode,
}

impl InputError {
    /// An error on the input field `field` with `code`.
    pub fn new(field: &str, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: vec![field.to_owned()],
            message: message.into(),
            code,
        }
    }

    /// An error on the input field at `path` (list entries by index).
    pub fn at(path: &[String], code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            field: path.to_vec(),
            message: message.into(),
            code,
        }
    }

    /// An error on `field` of the entry at `index` of the list `list`, e.g. the quantity of
    /// an order's third line: `["lines", "2", "quantity"]`.
    pub fn in_list(
        list: &str,
        index: usize,
        field: &str,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: vec![list.to_owned(), index.to_string(), field.to_owned()],
            message: message.into(),
            code,
        }
    }
}

/// What is wrong with an input, for programs: one stable code per kind of problem, so clients
/// can switch on it. The API shows it as `UserErrorCode`, which documents each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    Invalid,
    NotFound,
    LimitReached,
    InvalidTransition,
    Conflict,
    AlreadyClaimed,
    AlreadyReviewed,
    IdempotencyKeyReused,
    ItemNotFound,
    ItemUnavailable,
    RestaurantClosed,
    NotClaimed,
    NotDelivered,
    OutsideDeliveryArea,
    BelowMinimumOrder,
    RestaurantPaused,
    InvalidOptions,
}

/// `value` trimmed, when it has `least` to `most` characters; else an `INVALID` error on
/// `field` that says the bounds. The one check of every bounded text input.
pub(crate) fn bounded_text(
    field: &str,
    value: &str,
    least: usize,
    most: usize,
) -> Result<String, InputError> {
    let value = value.trim();
    let count = value.chars().count();
    if count < least || count > most {
        return Err(InputError::new(
            field,
            ErrorCode::Invalid,
            format!("{least} to {most} characters"),
        ));
    }
    Ok(value.to_owned())
}

/// The point at `latitude`, `longitude`; an `INVALID` error on `field` when it is off the map.
pub(crate) fn location(
    field: &str,
    latitude: f64,
    longitude: f64,
) -> Result<restaurants::Point, InputError> {
    restaurants::Point::new(latitude, longitude)
        .map_err(|_| InputError::new(field, ErrorCode::Invalid, "the location is off the map"))
}

/// `select` narrowed to the rows `condition` matches, with no `WHERE` at all when the
/// condition is empty. SeaORM writes an empty condition as `WHERE TRUE`, and any `WHERE`
/// keeps SQLite from counting a table from its b-tree: an unfiltered `totalCount` stepped
/// through every row instead.
pub(crate) fn matching<S: sea_orm::QueryFilter>(select: S, condition: sea_orm::Condition) -> S {
    if condition.is_empty() {
        select
    } else {
        select.filter(condition)
    }
}

/// What a service returns: a result, a fixable input problem, or a failure (`AppError`).
pub type ServiceResult<T> = crate::error::AppResult<Result<T, InputError>>;

/// Whether `error` is a unique index refusing a duplicate.
pub(crate) fn is_unique_violation(error: &sea_orm::DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// Makes write transactions that change what belongs to `user_id` (API tokens, sessions) take
/// turns: on PostgreSQL it locks the user's row until `txn` ends (`FOR NO KEY UPDATE`, which
/// still lets other transactions insert rows that refer to the user, such as orders); what
/// `txn` reads after it includes everything the previous holder committed. SQLite's write
/// transaction already holds the whole database, and the lock is left out of its SQL.
pub(crate) async fn lock_user(
    txn: &sea_orm::DatabaseTransaction,
    user_id: i64,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{EntityTrait, QuerySelect, sea_query::LockType};
    entities::user::Entity::find_by_id(user_id)
        .select_only()
        .column(entities::user::Column::Id)
        .lock(LockType::NoKeyUpdate)
        .into_tuple::<i64>()
        .one(txn)
        .await?;
    Ok(())
}
