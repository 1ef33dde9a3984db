//! Webhook endpoints: created by a restaurant's owner (for that restaurant) or an admin (for
//! every restaurant), managed by whoever created them (and admins), and their deliveries.
//! Someone else's endpoint answers as if it did not exist.

use chrono::{DateTime, Duration, Utc};
use entities::{WebhookDeliveryStatus, restaurant, webhook, webhook_delivery};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::LockType,
};
use serde_json::json;

use super::{ErrorCode, InputError, ServiceResult, lock_user};
use crate::{
    auth::{Scope, Viewer},
    db::{WriteTransaction, begin_write},
    error::AppResult,
    webhooks::{self, EventType, signing::SecretBox, target},
};

/// Most endpoints one user may have.
pub const MAX_ENDPOINTS_PER_USER: u64 = 20;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// How long the secret before a rotation keeps signing alongside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// What managing endpoints needs from the server's settings.
#[derive(Clone, Debug)]
pub struct Policy {
    pub secrets: SecretBox,
    /// `webhooks.allow_private_targets`.
    pub allow_private: bool,
}

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<EventType>,
    pub restaurant_id: Option<i64>,
    pub description: Option<String>,
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub events: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

fn not_found(field: &str) -> InputError {
    InputError::new(field, ErrorCode::NotFound, "no such webhook endpoint")
}

/// Whether `viewer` manages `endpoint`: its creator, or an admin.
fn manages(viewer: &Viewer, endpoint: &webhook::Model) -> bool {
    viewer.is_self_or_admin(endpoint.user_id)
}

/// Checks a URL's form and where it leads now.
async fn check_url(policy: &Policy, url: &str) -> Result<String, InputError> {
    let parsed = target::parse(url, policy.allow_private)
        .map_err(|refusal| InputError::new("url", ErrorCode::Invalid, refusal))?;
    target::check_destination(&parsed, policy.allow_private)
        .await
        .map_err(|refusal| InputError::new("url", ErrorCode::Invalid, refusal))?;
    Ok(parsed.to_string())
}

fn check_events(events: &[EventType]) -> Result<serde_json::Value, InputError> {
    if events.is_empty() {
        return Err(InputError::new(
            "events",
            ErrorCode::Invalid,
            "subscribe to at least one event type",
        ));
    }
    if events.contains(&EventType::WebhookTest) {
        return Err(InputError::new(
            "events",
            ErrorCode::Invalid,
            "WEBHOOK_TEST is sent by sendTestWebhook only and cannot be subscribed to",
        ));
    }
    let mut names: Vec<&str> = events.iter().map(|kind| kind.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    Ok(json!(names))
}

fn check_description(description: Option<&str>) -> Result<String, InputError> {
    let description = description.unwrap_or_default().trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(InputError::new(
            "description",
            ErrorCode::Invalid,
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(description.to_owned())
}

/// Creates an endpoint; returns it with its signing secret, which is shown only this once.
pub async fn create(
    db: &DatabaseConnection,
    viewer: &Viewer,
    policy: &Policy,
    input: NewEndpoint,
    now: DateTime<Utc>,
) -> ServiceResult<(webhook::Model, String)> {
    viewer.require_scope(Scope::WebhooksWrite)?;
    let user_id = viewer.require_user()?.id;
    let events = match check_events(&input.events) {
        Ok(events) => events,
        Err(error) => return Ok(Err(error)),
    };
    let description = match check_description(input.description.as_deref()) {
        Ok(description) => description,
        Err(error) => return Ok(Err(error)),
    };
    match input.restaurant_id {
        None if !viewer.is_admin() => {
            return Ok(Err(InputError::new(
                "restaurantId",
                ErrorCode::Invalid,
                "only admins can follow every restaurant; name yours",
            )));
        }
        None => {}
        Some(restaurant_id) => {
            let owner = restaurant::Entity::find_by_id(restaurant_id)
                .select_only()
                .column(restaurant::Column::OwnerId)
                .into_tuple::<i64>()
                .one(db)
                .await?;
            let allowed = owner.is_some_and(|owner| owner == user_id || viewer.is_admin());
            if !allowed {
                // Not telling strangers which restaurants exist beyond what is public anyway:
                // the same answer for "not yours" and "no such restaurant".
                return Ok(Err(InputError::new(
                    "restaurantId",
                    ErrorCode::NotFound,
                    "no restaurant of yours has this ID",
                )));
            }
        }
    }
    let url = match check_url(policy, &input.url).await {
        Ok(url) => url,
        Err(error) => return Ok(Err(error)),
    };
    let txn = begin_write(db).await?;
    lock_user(&txn, user_id).await?;
    let count = webhook::Entity::find()
        .filter(webhook::Column::UserId.eq(user_id))
        .count(&txn)
        .await?;
    if count >= MAX_ENDPOINTS_PER_USER {
        return Ok(Err(InputError::new(
            "url",
            ErrorCode::LimitReached,
            format!("at most {MAX_ENDPOINTS_PER_USER} endpoints; delete one first"),
        )));
    }
    let secret = webhooks::signing::new_secret();
    let endpoint = webhook::ActiveModel {
        user_id: Set(user_id),
        restaurant_id: Set(input.restaurant_id),
        url: Set(url),
        events: Set(events),
        secret_ciphertext: Set(policy.secrets.seal(&secret)),
        is_active: Set(true),
        created_at: Set(now),
        description: Set(description),
        previous_secret_ciphertext: Set(None),
        previous_secret_expires_at: Set(None),
        disabled_reason: Set(None),
        failing_since: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Ok((endpoint, secret)))
}

/// The endpoint `id` if `viewer` manages it.
pub async fn find_managed(
    db: &impl sea_orm::ConnectionTrait,
    viewer: &Viewer,
    id: i64,
) -> AppResult<Option<webhook::Model>> {
    managed(webhook::Entity::find_by_id(id), db, viewer).await
}

/// `find_managed` in a write transaction, the row locked until the transaction ends (on
/// PostgreSQL; SQLite's writer is alone anyway): an endpoint deleted by someone else meanwhile
/// is not found, and one that is found stays until this transaction has written. Only a
/// deletion takes `FOR UPDATE`; the others take `FOR NO KEY UPDATE`, which the events being
/// queued for the endpoint meanwhile (`webhooks::enqueue`, `FOR KEY SHARE`) do not wait for.
async fn lock_managed(
    txn: &WriteTransaction,
    viewer: &Viewer,
    id: i64,
    lock: LockType,
) -> AppResult<Option<webhook::Model>> {
    managed(webhook::Entity::find_by_id(id).lock(lock), txn, viewer).await
}

async fn managed(
    select: sea_orm::Select<webhook::Entity>,
    db: &impl sea_orm::ConnectionTrait,
    viewer: &Viewer,
) -> AppResult<Option<webhook::Model>> {
    Ok(select
        .one(db)
        .await?
        .filter(|endpoint| manages(viewer, endpoint)))
}

/// Changes an endpoint. Enabling one clears why it was disabled and its failure streak.
pub async fn update(
    db: &DatabaseConnection,
    viewer: &Viewer,
    policy: &Policy,
    id: i64,
    changes: EndpointChanges,
) -> ServiceResult<webhook::Model> {
    viewer.require_scope(Scope::WebhooksWrite)?;
    viewer.require_user()?;
    // Someone else's endpoint is not found, whatever else is wrong with the changes.
    if find_managed(db, viewer, id).await?.is_none() {
        return Ok(Err(not_found("id")));
    }
    // Checked before the transaction: checking a URL may resolve its host.
    let url = match changes.url.as_deref().map(|url| check_url(policy, url)) {
        Some(checked) => match checked.await {
            Ok(url) => Some(url),
            Err(error) => return Ok(Err(error)),
        },
        None => None,
    };
    let events = match changes.events.as_deref().map(check_events).transpose() {
        Ok(events) => events,
        Err(error) => return Ok(Err(error)),
    };
    let description = match changes
        .description
        .as_deref()
        .map(|description| check_description(Some(description)))
        .transpose()
    {
        Ok(description) => description,
        Err(error) => return Ok(Err(error)),
    };
    // Read again and written in one transaction: an endpoint deleted meanwhile is not found.
    let txn = begin_write(db).await?;
    let Some(endpoint) = lock_managed(&txn, viewer, id, LockType::NoKeyUpdate).await? else {
        return Ok(Err(not_found("id")));
    };
    let mut active: webhook::ActiveModel = endpoint.into();
    if let Some(url) = url {
        active.url = Set(url);
    }
    if let Some(events) = events {
        active.events = Set(events);
    }
    if let Some(description) = description {
        active.description = Set(description);
    }
    match changes.enabled {
        Some(true) => {
            active.is_active = Set(true);
            active.disabled_reason = Set(None);
            active.failing_since = Set(None);
        }
        Some(false) => {
            active.is_active = Set(false);
            active.disabled_reason = Set(Some("disabled by its owner".into()));
        }
        None => {}
    }
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    if changes.enabled == Some(true) {
        // Deliveries that waited while it was disabled can go now.
        webhooks::wake();
    }
    Ok(Ok(updated))
}

/// Deletes an endpoint with its deliveries; returns its id.
pub async fn delete(db: &DatabaseConnection, viewer: &Viewer, id: i64) -> ServiceResult<i64> {
    viewer.require_scope(Scope::WebhooksWrite)?;
    viewer.require_user()?;
    let txn = begin_write(db).await?;
    let Some(endpoint) = lock_managed(&txn, viewer, id, LockType::Update).await? else {
        return Ok(Err(not_found("id")));
    };
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::WebhookId.eq(endpoint.id))
        .exec(&txn)
        .await?;
    webhook::Entity::delete_by_id(endpoint.id)
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(Ok(endpoint.id))
}

/// Gives an endpoint a new secret; the old one keeps signing alongside it for
/// [`ROTATION_OVERLAP`], so receivers can switch without missing a delivery.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    viewer: &Viewer,
    policy: &Policy,
    id: i64,
    now: DateTime<Utc>,
) -> ServiceResult<(webhook::Model, String)> {
    viewer.require_scope(Scope::WebhooksWrite)?;
    viewer.require_user()?;
    let txn = begin_write(db).await?;
    let Some(endpoint) = lock_managed(&txn, viewer, id, LockType::NoKeyUpdate).await? else {
        return Ok(Err(not_found("id")));
    };
    let secret = webhooks::signing::new_secret();
    let mut active: webhook::ActiveModel = endpoint.clone().into();
    active.previous_secret_ciphertext = Set(Some(endpoint.secret_ciphertext));
    active.previous_secret_expires_at = Set(Some(now + ROTATION_OVERLAP));
    active.secret_ciphertext = Set(policy.secrets.seal(&secret));
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(Ok((updated, secret)))
}

/// Queues a `webhook.test` delivery to an endpoint.
pub async fn send_test(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
    now: DateTime<Utc>,
) -> ServiceResult<webhook_delivery::Model> {
    viewer.require_scope(Scope::WebhooksWrite)?;
    viewer.require_user()?;
    // The endpoint stays until the delivery is written: one deleted meanwhile is not found,
    // rather than left with a delivery of no endpoint.
    let txn = begin_write(db).await?;
    let Some(endpoint) = lock_managed(&txn, viewer, id, LockType::NoKeyUpdate).await? else {
        return Ok(Err(not_found("id")));
    };
    if !endpoint.is_active {
        return Ok(Err(disabled()));
    }
    let payload = webhooks::envelope(
        EventType::WebhookTest,
        now,
        json!({
            "endpointId": crate::graphql::relay::GlobalId::encode(
                crate::graphql::relay::NodeKind::WebhookEndpoint,
                endpoint.id,
            ).0,
            "message": "a test delivery, sent because you asked for one",
        }),
    );
    let delivery = webhooks::pending(
        endpoint.id,
        EventType::WebhookTest,
        &webhooks::new_message_id(),
        payload,
        now,
    )
    .insert(&txn)
    .await?;
    txn.commit().await?;
    webhooks::wake();
    Ok(Ok(delivery))
}

fn disabled() -> InputError {
    InputError::new(
        "id",
        ErrorCode::Invalid,
        "the endpoint is disabled; enable it first",
    )
}

/// Sends a delivery again, as a new delivery of the same message (same `webhook-id` and
/// payload), after whatever is queued for the endpoint.
pub async fn redeliver(
    db: &DatabaseConnection,
    viewer: &Viewer,
    delivery_id: i64,
    now: DateTime<Utc>,
) -> ServiceResult<webhook_delivery::Model> {
    viewer.require_scope(Scope::WebhooksWrite)?;
    viewer.require_user()?;
    let missing = || {
        InputError::new(
            "deliveryId",
            ErrorCode::NotFound,
            "no such webhook delivery",
        )
    };
    let txn = begin_write(db).await?;
    let Some(original) = webhook_delivery::Entity::find_by_id(delivery_id)
        .one(&txn)
        .await?
    else {
        return Ok(Err(missing()));
    };
    let Some(endpoint) =
        lock_managed(&txn, viewer, original.webhook_id, LockType::NoKeyUpdate).await?
    else {
        return Ok(Err(missing()));
    };
    if !endpoint.is_active {
        return Ok(Err(InputError {
            field: vec!["deliveryId".into()],
            ..disabled()
        }));
    }
    let kind = EventType::parse(&original.event_type).unwrap_or(EventType::WebhookTest);
    let delivery = webhooks::pending(
        endpoint.id,
        kind,
        &original.message_id,
        original.payload.clone(),
        now,
    )
    .insert(&txn)
    .await?;
    txn.commit().await?;
    webhooks::wake();
    Ok(Ok(delivery))
}

/// `user_id`'s endpoints, newest first.
pub async fn list(db: &DatabaseConnection, user_id: i64) -> AppResult<Vec<webhook::Model>> {
    Ok(webhook::Entity::find()
        .filter(webhook::Column::UserId.eq(user_id))
        .order_by_desc(webhook::Column::Id)
        .all(db)
        .await?)
}

/// One page of an endpoint's deliveries, newest first: `limit + 1` rows after (`older`) or
/// before the delivery `cursor`, in the direction read.
pub async fn deliveries(
    db: &DatabaseConnection,
    endpoint_id: i64,
    status: Option<WebhookDeliveryStatus>,
    cursor: Option<i64>,
    older: bool,
    limit: u64,
) -> AppResult<Vec<webhook_delivery::Model>> {
    let mut query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::WebhookId.eq(endpoint_id));
    if let Some(status) = status {
        query = query.filter(webhook_delivery::Column::Status.eq(status));
    }
    query = match (cursor, older) {
        (Some(id), true) => query.filter(webhook_delivery::Column::Id.lt(id)),
        (Some(id), false) => query.filter(webhook_delivery::Column::Id.gt(id)),
        (None, _) => query,
    };
    query = if older {
        query.order_by_desc(webhook_delivery::Column::Id)
    } else {
        query.order_by_asc(webhook_delivery::Column::Id)
    };
    Ok(query.limit(limit + 1).all(db).await?)
}

/// How many deliveries an endpoint has (with `status`).
pub async fn count_deliveries(
    db: &DatabaseConnection,
    endpoint_id: i64,
    status: Option<WebhookDeliveryStatus>,
) -> AppResult<u64> {
    let mut query = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::WebhookId.eq(endpoint_id));
    if let Some(status) = status {
        query = query.filter(webhook_delivery::Column::Status.eq(status));
    }
    Ok(query.count(db).await?)
}

/// Deletes up to `batch` sent or failed deliveries created before `before`; how many went.
/// Pending ones stay whatever their age: they are still being sent. The `(status,
/// created_at)` index finds them without reading the rest.
pub async fn prune_deliveries(
    db: &DatabaseConnection,
    before: DateTime<Utc>,
    batch: u64,
) -> AppResult<u64> {
    use webhook_delivery::Column;
    let old = sea_orm::sea_query::Query::select()
        .column(Column::Id)
        .from(webhook_delivery::Entity)
        .and_where(Column::Status.is_in([
            WebhookDeliveryStatus::Delivered,
            WebhookDeliveryStatus::Failed,
        ]))
        .and_where(Column::CreatedAt.lt(before))
        .limit(batch)
        .to_owned();
    let deleted = webhook_delivery::Entity::delete_many()
        .filter(Column::Id.in_subquery(old))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
