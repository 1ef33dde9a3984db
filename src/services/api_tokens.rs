//! Integrator API tokens: created with a secret shown once, stored as a hash, revocable.

use crate::db::begin_write;
use chrono::{DateTime, Duration, Utc};
use entities::{api_token, user};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder,
};

use super::{ErrorCode, InputError, lock_user};
use crate::{
    auth::{Scope, secrets},
    error::AppResult,
};

/// Most live (unrevoked) tokens a user may hold.
pub const MAX_TOKENS_PER_USER: u64 = 50;
/// Longest token name.
pub const MAX_NAME_CHARS: usize = 100;
/// How often `last_used_at` is written at most, to keep reads free of writes.
const LAST_USED_RESOLUTION: Duration = Duration::minutes(1);

/// Creates a token for `user_id`; returns it with its secret, which is not stored.
pub async fn create(
    db: &DatabaseConnection,
    user_id: i64,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> AppResult<Result<(api_token::Model, String), InputError>> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Ok(Err(InputError {
            field: vec!["name".into()],
            message: format!("a name of 1 to {MAX_NAME_CHARS} characters is needed"),
            code: ErrorCode::Invalid,
        }));
    }
    if scopes.is_empty() {
        return Ok(Err(InputError {
            field: vec!["scopes".into()],
            message: "a token needs at least one scope".into(),
            code: ErrorCode::Invalid,
        }));
    }
    if expires_at.is_some_and(|at| at <= now) {
        return Ok(Err(InputError {
            field: vec!["expiresAt".into()],
            message: "the expiry must be in the future".into(),
            code: ErrorCode::Invalid,
        }));
    }
    let txn = begin_write(db).await?;
    // Creations for one user take turns, so two cannot both count 49 and both insert.
    lock_user(&txn, user_id).await?;
    let live = api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(user_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .count(&txn)
        .await?;
    if live >= MAX_TOKENS_PER_USER {
        return Ok(Err(InputError {
            field: vec!["name".into()],
            message: format!("at most {MAX_TOKENS_PER_USER} tokens can be live; revoke one first"),
            code: ErrorCode::LimitReached,
        }));
    }
    let secret = secrets::new_api_token();
    let mut scope_names: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    scope_names.sort_unstable();
    scope_names.dedup();
    let token = api_token::ActiveModel {
        user_id: Set(user_id),
        name: Set(name.to_owned()),
        token_prefix: Set(secret.chars().take(10).collect()),
        token_hash: Set(secrets::hash(&secret)),
        scopes: Set(serde_json::json!(scope_names)),
        expires_at: Set(expires_at),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Ok((token, secret)))
}

/// Revokes token `id` of `user_id`. `NOT_FOUND` when it is not theirs, so strangers learn
/// nothing about other users' tokens.
pub async fn revoke(
    db: &DatabaseConnection,
    user_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> AppResult<Result<api_token::Model, InputError>> {
    let txn = begin_write(db).await?;
    let Some(token) = api_token::Entity::find_by_id(id)
        .filter(api_token::Column::UserId.eq(user_id))
        .one(&txn)
        .await?
    else {
        return Ok(Err(InputError {
            field: vec!["id".into()],
            message: "no such API token".into(),
            code: ErrorCode::NotFound,
        }));
    };
    if token.revoked_at.is_some() {
        return Ok(Ok(token));
    }
    let mut active: api_token::ActiveModel = token.into();
    active.revoked_at = Set(Some(now));
    let token = active.update(&txn).await?;
    txn.commit().await?;
    Ok(Ok(token))
}

/// The user's tokens, newest first (revoked ones included, so the history stays visible).
pub async fn list(db: &DatabaseConnection, user_id: i64) -> AppResult<Vec<api_token::Model>> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(user_id))
        .order_by_desc(api_token::Column::Id)
        .all(db)
        .await?)
}

/// The live token with this secret and its user, recording the use.
pub async fn authenticate(
    db: &DatabaseConnection,
    secret: &str,
    now: DateTime<Utc>,
) -> AppResult<Option<(api_token::Model, user::Model)>> {
    let found = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(secrets::hash(secret)))
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    let Some((token, Some(user))) = found else {
        return Ok(None);
    };
    if token.revoked_at.is_some() || token.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    if token
        .last_used_at
        .is_none_or(|at| now - at >= LAST_USED_RESOLUTION)
    {
        api_token::Entity::update_many()
            .col_expr(
                api_token::Column::LastUsedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(api_token::Column::Id.eq(token.id))
            .exec(db)
            .await?;
    }
    Ok(Some((token, user)))
}
