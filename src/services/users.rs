//! Users: linking outside identities, and what admins manage (roles, staff memberships).

use crate::db::begin_write;
use chrono::{DateTime, Utc};
use entities::{identity, restaurant, restaurant_staff, user};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{LockType, OnConflict},
};

use super::{ErrorCode, InputError};
use crate::{auth::Role, error::AppResult};

/// What an identity provider says about a person.
#[derive(Debug, Clone)]
pub struct ExternalProfile {
    pub provider: String,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
}

/// The user linked to `profile`'s identity, created (as a customer) on first sight.
///
/// An email already used by another account is not copied to the new one: linking accounts
/// by an email the provider asserts would let one provider's user take over another's account.
pub async fn find_or_create(
    db: &DatabaseConnection,
    profile: &ExternalProfile,
    now: DateTime<Utc>,
) -> AppResult<user::Model> {
    let email = profile.email.as_deref().map(normalize_email);
    for _ in 0..2 {
        if let Some((_, Some(user))) = identity::Entity::find()
            .filter(identity::Column::Provider.eq(&profile.provider))
            .filter(identity::Column::Subject.eq(&profile.subject))
            .find_also_related(user::Entity)
            .one(db)
            .await?
        {
            return Ok(user);
        }
        let txn = begin_write(db).await?;
        let email_taken = match &email {
            Some(email) => user::Entity::find()
                .filter(user::Column::Email.eq(email))
                .one(&txn)
                .await?
                .is_some(),
            None => false,
        };
        let display_name = profile
            .name
            .clone()
            .or_else(|| {
                profile
                    .email
                    .as_ref()
                    .and_then(|e| e.split('@').next().map(str::to_owned))
            })
            .unwrap_or_else(|| "New user".into());
        let user = user::ActiveModel {
            display_name: Set(display_name),
            email: Set(if email_taken { None } else { email.clone() }),
            roles: Set(serde_json::json!([Role::Customer.stored()])),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        let user = match user {
            Ok(user) => user,
            // Another account took the email since it was checked: again, without it.
            Err(error) if super::is_unique_violation(&error) => {
                txn.rollback().await?;
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let linked = identity::ActiveModel {
            user_id: Set(user.id),
            provider: Set(profile.provider.clone()),
            subject: Set(profile.subject.clone()),
            email: Set(profile.email.clone()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        match linked {
            Ok(_) => {
                txn.commit().await?;
                return Ok(user);
            }
            // Another request linked this identity first; use its user.
            Err(_) => txn.rollback().await?,
        }
    }
    Err(anyhow::anyhow!("could not link identity {}", profile.provider).into())
}

/// An email as users are stored and found by: trimmed, lower case.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Which users an admin lists.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// This email, compared case-insensitively.
    pub email: Option<String>,
    /// Users holding this role.
    pub role: Option<Role>,
}

fn user_condition(filter: &UserFilter) -> sea_orm::Condition {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let mut condition = sea_orm::Condition::all();
    if let Some(email) = &filter.email {
        condition = condition.add(user::Column::Email.eq(normalize_email(email)));
    }
    if let Some(role) = filter.role {
        // Roles are a JSON array of names; as text, `"courier"` appears with its quotes.
        condition = condition.add(
            Expr::col(user::Column::Roles)
                .cast_as("TEXT")
                .like(format!("%\"{}\"%", role.stored())),
        );
    }
    condition
}

/// Up to `limit` users matching `filter` after (`forward`) or before the id `cursor`, in the
/// direction read (ids ascending forward).
pub async fn find(
    db: &DatabaseConnection,
    filter: &UserFilter,
    cursor: Option<i64>,
    forward: bool,
    limit: u64,
) -> AppResult<Vec<user::Model>> {
    use sea_orm::{QueryOrder, QuerySelect};
    let mut query = super::matching(user::Entity::find(), user_condition(filter));
    query = match (cursor, forward) {
        (Some(id), true) => query.filter(user::Column::Id.gt(id)),
        (Some(id), false) => query.filter(user::Column::Id.lt(id)),
        (None, _) => query,
    };
    query = if forward {
        query.order_by_asc(user::Column::Id)
    } else {
        query.order_by_desc(user::Column::Id)
    };
    Ok(query.limit(limit).all(db).await?)
}

/// How many users match `filter`.
pub async fn count(db: &DatabaseConnection, filter: &UserFilter) -> AppResult<u64> {
    use sea_orm::{QuerySelect, sea_query::Expr};
    // A plain `COUNT(*)` (SeaORM's `count` counts a subquery of every column), with no
    // `WHERE` when nothing filters: SQLite counts the table from its b-tree then.
    let count: Option<i64> = super::matching(
        user::Entity::find()
            .select_only()
            .expr(Expr::cust("COUNT(*)")),
        user_condition(filter),
    )
    .into_tuple()
    .one(db)
    .await?;
    Ok(count.map_or(0, |count| u64::try_from(count).unwrap_or(0)))
}

fn not_found(field: &'static str, what: &str) -> InputError {
    InputError {
        field: vec![field.to_owned()],
        message: format!("no such {what}"),
        code: ErrorCode::NotFound,
    }
}

/// Gives (or takes, with `grant = false`) `role` to user `user_id`, as admin `actor_id`. An
/// admin cannot take their own admin role (another admin can), so the marketplace never locks
/// itself out by one mistaken call.
pub async fn set_role(
    db: &DatabaseConnection,
    actor_id: i64,
    user_id: i64,
    role: Role,
    grant: bool,
    now: DateTime<Utc>,
) -> AppResult<Result<user::Model, InputError>> {
    if !grant && role == Role::Admin && user_id == actor_id {
        return Ok(Err(InputError {
            field: vec!["userId".to_owned()],
            message: "admins cannot take their own admin role; ask another admin".to_owned(),
            code: ErrorCode::Invalid,
        }));
    }
    let txn = begin_write(db).await?;
    // The roles are read locked (on PostgreSQL; SQLite's writer is alone) and written whole: a
    // grant and a revoke at the same moment both take effect, neither undoes the other.
    let Some(user) = user::Entity::find_by_id(user_id)
        .lock(LockType::NoKeyUpdate)
        .one(&txn)
        .await?
    else {
        return Ok(Err(not_found("userId", "user")));
    };
    let mut roles = Role::of(&user);
    let changed = if grant {
        roles.insert(role)
    } else {
        roles.remove(&role)
    };
    if !changed {
        return Ok(Ok(user));
    }
    let mut names: Vec<&str> = roles.iter().map(|r| r.stored()).collect();
    names.sort_unstable();
    // Strictly later than the change before, whichever replica's clock made that one: a
    // running subscription takes the roles of a change later than those it was started with.
    let changed_at = user.roles_changed_at.map_or(now, |before| {
        now.max(before + chrono::Duration::microseconds(1))
    });
    let mut active: user::ActiveModel = user.into();
    active.roles = Set(serde_json::json!(names));
    active.updated_at = Set(now);
    active.roles_changed_at = Set(Some(changed_at));
    let user = active.update(&txn).await?;
    txn.commit().await?;
    Ok(Ok(user))
}

/// Adds (or removes, with `member = false`) user `user_id` to the staff of `restaurant_id`.
pub async fn set_staff(
    db: &DatabaseConnection,
    viewer: &crate::auth::Viewer,
    restaurant_id: i64,
    user_id: i64,
    member: bool,
    now: DateTime<Utc>,
) -> AppResult<Result<(), InputError>> {
    let me = viewer.require_user()?.id;
    viewer.require_full_session()?;
    let txn = begin_write(db).await?;
    let Some(found) = restaurant::Entity::find_by_id(restaurant_id)
        .one(&txn)
        .await?
    else {
        return Ok(Err(not_found("restaurantId", "restaurant")));
    };
    // Its owner manages its staff, admins any restaurant's.
    if found.owner_id != me && !viewer.is_admin() {
        return Err(crate::error::AppError::Forbidden);
    }
    if !member && user_id == found.owner_id {
        return Ok(Err(InputError {
            field: vec!["userId".into()],
            message: "the owner stays on the staff of their restaurant".into(),
            code: ErrorCode::Invalid,
        }));
    }
    if user::Entity::find_by_id(user_id).one(&txn).await?.is_none() {
        return Ok(Err(not_found("userId", "user")));
    }
    let existing = restaurant_staff::Entity::find_by_id((restaurant_id, user_id))
        .one(&txn)
        .await?;
    match (existing, member) {
        (None, true) => {
            // The same membership added at the same moment by another request is no error.
            restaurant_staff::Entity::insert(restaurant_staff::ActiveModel {
                restaurant_id: Set(restaurant_id),
                user_id: Set(user_id),
                created_at: Set(now),
            })
            .on_conflict(
                OnConflict::columns([
                    restaurant_staff::Column::RestaurantId,
                    restaurant_staff::Column::UserId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        (Some(membership), false) => {
            restaurant_staff::Entity::delete_by_id((membership.restaurant_id, membership.user_id))
                .exec(&txn)
                .await?;
        }
        _ => {}
    }
    txn.commit().await?;
    Ok(Ok(()))
}
