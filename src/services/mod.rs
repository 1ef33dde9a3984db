//! Business rules and database access outside DataLoaders. Services take a connection (or a
//! transaction) and plain arguments, so they are testable without GraphQL.

pub mod api_tokens;
pub mod orders;
pub mod restaurants;
pub mod sessions;
pub mod users;

/// A problem with the input that the user can fix; the service changed nothing. Mutations
/// report these in their payload's `userErrors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The input field at fault, as the API names it.
    pub field: &'static str,
    pub message: String,
    /// A stable code, e.g. `INVALID`, `NOT_FOUND`, `INVALID_TRANSITION`.
    pub code: &'static str,
}

impl InputError {
    /// An error on `field` with `code`.
    pub fn new(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
            code,
        }
    }
}

/// What a service returns: a result, a fixable input problem, or a failure (`AppError`).
pub type ServiceResult<T> = crate::error::AppResult<Result<T, InputError>>;

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
