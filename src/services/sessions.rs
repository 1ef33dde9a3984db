//! Login sessions: refresh tokens stored as hashes, rotated on every use. Presenting a token
//! that was already rotated means it leaked, so its whole family is revoked.

use crate::db::begin_write;
use chrono::{DateTime, Duration, Utc};
use entities::refresh_token;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, QueryFilter, sea_query::Expr,
};

use super::lock_user;
use crate::{auth::secrets, error::AppResult};

/// Why a refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshError {
    /// Unknown, expired or revoked.
    Invalid,
    /// Already used: the family is now revoked.
    Reused,
}

/// Starts a session for `user_id`; returns the refresh token secret.
pub async fn start(
    db: &DatabaseConnection,
    user_id: i64,
    ttl: Duration,
    now: DateTime<Utc>,
) -> AppResult<String> {
    let secret = secrets::random_secret();
    insert(db, user_id, &secrets::random_secret(), &secret, ttl, now).await?;
    Ok(secret)
}

async fn insert<C: sea_orm::ConnectionTrait>(
    db: &C,
    user_id: i64,
    family_id: &str,
    secret: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> AppResult<()> {
    refresh_token::ActiveModel {
        user_id: Set(user_id),
        family_id: Set(family_id.to_owned()),
        token_hash: Set(secrets::hash(secret)),
        expires_at: Set(now + ttl),
        rotated_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Exchanges `secret` for a new refresh token of the same family; returns the user id and
/// the new secret.
pub async fn refresh(
    db: &DatabaseConnection,
    secret: &str,
    ttl: Duration,
    now: DateTime<Utc>,
) -> AppResult<Result<(i64, String), RefreshError>> {
    let txn = begin_write(db).await?;
    let Some(found) = find(&txn, secret).await? else {
        return Ok(Err(RefreshError::Invalid));
    };
    // Take turns with a logout of the same session, then read the token again: a logout
    // that committed first has revoked it, one that comes after sees the new token.
    lock_user(&txn, found.user_id).await?;
    let Some(token) = refresh_token::Entity::find_by_id(found.id)
        .one(&txn)
        .await?
    else {
        return Ok(Err(RefreshError::Invalid));
    };
    if token.revoked_at.is_some() || token.expires_at <= now {
        return Ok(Err(RefreshError::Invalid));
    }
    // Claim the token: of two racing uses exactly one sees it unrotated.
    let claimed = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(token.id))
        .filter(refresh_token::Column::RotatedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected
        == 1;
    if !claimed {
        txn.rollback().await?;
        revoke_family(db, &token.family_id, now).await?;
        tracing::warn!(
            user_id = token.user_id,
            "a rotated refresh token was reused; session revoked"
        );
        return Ok(Err(RefreshError::Reused));
    }
    let next = secrets::random_secret();
    insert(&txn, token.user_id, &token.family_id, &next, ttl, now).await?;
    txn.commit().await?;
    Ok(Ok((token.user_id, next)))
}

/// Ends the session `secret` belongs to. Unknown tokens are ignored: logging out twice is fine.
pub async fn logout(db: &DatabaseConnection, secret: &str, now: DateTime<Utc>) -> AppResult<()> {
    let txn = begin_write(db).await?;
    if let Some(token) = find(&txn, secret).await? {
        // Waits for a refresh of the same session in flight: the token it hands out is
        // revoked too.
        lock_user(&txn, token.user_id).await?;
        revoke_family(&txn, &token.family_id, now).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// The refresh token whose secret is `secret`.
async fn find(
    txn: &DatabaseTransaction,
    secret: &str,
) -> Result<Option<refresh_token::Model>, sea_orm::DbErr> {
    refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(secrets::hash(secret)))
        .one(txn)
        .await
}

async fn revoke_family<C: ConnectionTrait>(
    db: &C,
    family_id: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(now))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
