//! Webhooks: signed notifications of what happened, sent to integrators' endpoints.
//!
//! The change itself writes the record: a service that changes an order (or creates a review)
//! calls [`enqueue`] inside its own transaction, after the `order_events` row it writes, and
//! one `webhook_deliveries` row per endpoint that subscribed is inserted there (a
//! transactional outbox). A rolled-back change therefore sends nothing, and a committed one
//! cannot be lost by a crash: the rows are in the database before anyone hears of them. The
//! same `order_events` log feeds live updates; the delivery rows add what webhooks need on top
//! of it (per endpoint: the payload as sent, attempts, the next try).
//!
//! [`sender`] sends them: every process that has `webhooks.send` takes due deliveries with a
//! lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas never take the same one), signs
//! them ([`signing`]), posts them to addresses [`target`] allows, and records the outcome.

pub mod sender;
pub mod signing;
pub mod target;

use std::sync::LazyLock;

use async_graphql::Enum;
use chrono::{DateTime, SecondsFormat, Utc};
use entities::{
    WebhookDeliveryStatus, order, order_event, restaurant, user, webhook, webhook_delivery,
};
use sea_orm::{
    ActiveEnum, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction,
    EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::{
    auth::Role,
    error::AppResult,
    graphql::{
        common::Money,
        relay::{GlobalId, NodeKind},
    },
};

/// The version of every payload's `data`; a change that would break receivers gets a new one
/// (and is announced), additions do not.
pub const PAYLOAD_VERSION: u32 = 1;

/// What an endpoint can subscribe to. The wire name (`order.placed`) is the payload's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum)]
#[graphql(name = "WebhookEventType")]
pub enum EventType {
    /// `order.placed`: a customer placed an order (with its lines).
    OrderPlaced,
    /// `order.accepted`: the restaurant accepted an order.
    OrderAccepted,
    /// `order.rejected`: the restaurant rejected an order.
    OrderRejected,
    /// `order.preparing`: the kitchen started on an order.
    OrderPreparing,
    /// `order.ready`: an order is ready for pickup.
    OrderReady,
    /// `order.picked_up`: the courier picked an order up.
    OrderPickedUp,
    /// `order.delivered`: the courier delivered an order.
    OrderDelivered,
    /// `order.cancelled`: the customer, the restaurant or an admin cancelled an order.
    OrderCancelled,
    /// `delivery.claimed`: a courier took an order's delivery.
    DeliveryClaimed,
    /// `review.created`: a customer reviewed an order.
    ReviewCreated,
    /// `menu.updated`: the restaurant changed its menu (categories or items).
    MenuUpdated,
    /// `webhook.test`: sent by `sendTestWebhook` only, whatever the endpoint subscribed to.
    WebhookTest,
}

impl EventType {
    /// Every type, in catalogue order.
    pub const ALL: [Self; 12] = [
        Self::OrderPlaced,
        Self::OrderAccepted,
        Self::OrderRejected,
        Self::OrderPreparing,
        Self::OrderReady,
        Self::OrderPickedUp,
        Self::OrderDelivered,
        Self::OrderCancelled,
        Self::DeliveryClaimed,
        Self::ReviewCreated,
        Self::MenuUpdated,
        Self::WebhookTest,
    ];

    /// The wire name, e.g. `order.placed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPlaced => "order.placed",
            Self::OrderAccepted => "order.accepted",
            Self::OrderRejected => "order.rejected",
            Self::OrderPreparing => "order.preparing",
            Self::OrderReady => "order.ready",
            Self::OrderPickedUp => "order.picked_up",
            Self::OrderDelivered => "order.delivered",
            Self::OrderCancelled => "order.cancelled",
            Self::DeliveryClaimed => "delivery.claimed",
            Self::ReviewCreated => "review.created",
            Self::MenuUpdated => "menu.updated",
            Self::WebhookTest => "webhook.test",
        }
    }

    /// Reads the wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The event an order's move to `status` makes.
    pub fn for_status(status: entities::OrderStatus) -> Self {
        use entities::OrderStatus::{
            Accepted, Cancelled, Delivered, PickedUp, Placed, Preparing, ReadyForPickup, Rejected,
        };
        match status {
            Placed => Self::OrderPlaced,
            Accepted => Self::OrderAccepted,
            Rejected => Self::OrderRejected,
            Preparing => Self::OrderPreparing,
            ReadyForPickup => Self::OrderReady,
            PickedUp => Self::OrderPickedUp,
            Delivered => Self::OrderDelivered,
            Cancelled => Self::OrderCancelled,
        }
    }
}

/// Wakes this process's sender: deliveries were committed (or became due) just now.
pub fn wake() {
    WAKE.notify_one();
}

static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Something that happened at a restaurant, for the endpoints that follow it.
pub struct Event {
    pub kind: EventType,
    pub restaurant_id: i64,
    pub at: DateTime<Utc>,
    pub data: Value,
}

/// The body of a delivery, as Standard Webhooks suggests: `type`, `timestamp`, `data`.
pub fn envelope(kind: EventType, at: DateTime<Utc>, data: Value) -> Value {
    let mut envelope = json!({
        "type": kind.as_str(),
        "timestamp": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "version": PAYLOAD_VERSION,
    });
    envelope["data"] = data;
    envelope
}

/// A new message id (`webhook-id`), shared by every endpoint's delivery of one event.
pub fn new_message_id() -> String {
    format!("msg_{}", crate::auth::secrets::random_secret())
}

/// Records a delivery of `event` for every active endpoint that subscribed to it, in `txn`:
/// they commit, or vanish, with the change. One statement when nobody subscribed.
///
/// The endpoints are read `FOR KEY SHARE` (on PostgreSQL), the lock their deliveries'
/// reference would take anyway: an endpoint being deleted is waited for and then left out,
/// instead of failing the change that has an event to send when the deletion commits.
pub async fn enqueue(txn: &DatabaseTransaction, event: Event) -> AppResult<()> {
    let endpoints: Vec<webhook::Model> = webhook::Entity::find()
        .filter(webhook::Column::IsActive.eq(true))
        .filter(
            Condition::any()
                .add(webhook::Column::RestaurantId.eq(event.restaurant_id))
                .add(webhook::Column::RestaurantId.is_null()),
        )
        .lock(sea_orm::sea_query::LockType::KeyShare)
        .all(txn)
        .await?
        .into_iter()
        .filter(|endpoint| subscribes(endpoint, event.kind))
        .collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    // An endpoint for one restaurant hears of it while its creator owns it; an endpoint for
    // every restaurant only while its creator is an admin.
    let mut users: Vec<i64> = endpoints.iter().map(|e| e.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let owner = restaurant::Entity::find_by_id(event.restaurant_id)
        .select_only()
        .column(restaurant::Column::OwnerId)
        .into_tuple::<i64>()
        .one(txn)
        .await?;
    let admins: Vec<i64> = user::Entity::find()
        .filter(crate::db::one_of(
            user::Column::Id,
            &users,
            txn.get_database_backend(),
        ))
        .all(txn)
        .await?
        .into_iter()
        .filter(|user| Role::of(user).contains(&Role::Admin))
        .map(|user| user.id)
        .collect();
    let message_id = new_message_id();
    let payload = envelope(event.kind, event.at, event.data);
    let rows: Vec<webhook_delivery::ActiveModel> = endpoints
        .iter()
        .filter(|endpoint| {
            admins.contains(&endpoint.user_id)
                || (endpoint.restaurant_id == Some(event.restaurant_id)
                    && Some(endpoint.user_id) == owner)
        })
        .map(|endpoint| {
            pending(
                endpoint.id,
                event.kind,
                &message_id,
                payload.clone(),
                event.at,
            )
        })
        .collect();
    if !rows.is_empty() {
        webhook_delivery::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// A delivery due now.
pub fn pending(
    endpoint_id: i64,
    kind: EventType,
    message_id: &str,
    payload: Value,
    now: DateTime<Utc>,
) -> webhook_delivery::ActiveModel {
    webhook_delivery::ActiveModel {
        webhook_id: Set(endpoint_id),
        event_type: Set(kind.as_str().to_owned()),
        payload: Set(payload),
        status: Set(WebhookDeliveryStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        last_status_code: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        delivered_at: Set(None),
        message_id: Set(message_id.to_owned()),
        lease_until: Set(None),
        last_attempt_at: Set(None),
        last_latency_ms: Set(None),
        ..Default::default()
    }
}

/// Whether `endpoint` subscribed to `kind`.
pub fn subscribes(endpoint: &webhook::Model, kind: EventType) -> bool {
    event_types(endpoint).contains(&kind)
}

/// The event types `endpoint` subscribed to.
pub fn event_types(endpoint: &webhook::Model) -> Vec<EventType> {
    endpoint
        .events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|name| name.as_str().and_then(EventType::parse))
        .collect()
}

/// One line of a placed order, for `order.placed`.
pub struct LineFacts<'a> {
    pub menu_item_id: i64,
    pub name: &'a str,
    pub unit_price: i64,
    pub quantity: i32,
    pub note: Option<&'a str>,
    /// The options chosen; `unit_price` includes them.
    pub options: &'a [crate::services::orders::ChosenOption],
}

/// The event of an order's change `event`, which left the order as `order` (its status and
/// version), with `lines` when it was placed and the courier when one claimed it.
pub fn order_event(
    order: &order::Model,
    event: &order_event::Model,
    lines: Option<&[LineFacts<'_>]>,
    courier_id: Option<i64>,
) -> Event {
    let kind = match event.kind {
        entities::OrderEventKind::DeliveryClaimed => EventType::DeliveryClaimed,
        entities::OrderEventKind::StatusChanged => EventType::for_status(event.to_status),
    };
    let money = |minor: i64| {
        let money = Money::from_minor(minor, &order.currency);
        json!({ "amount": money.amount, "currency": money.currency })
    };
    let id = |kind: NodeKind, id: i64| GlobalId::encode(kind, id).0;
    let mut order_json = json!({
        "id": id(NodeKind::Order, order.id),
        "restaurantId": id(NodeKind::Restaurant, order.restaurant_id),
        "customerId": id(NodeKind::User, order.customer_id),
        "status": event.to_status.to_value(),
        "version": event.version,
        "subtotal": money(order.subtotal),
        "deliveryFee": money(order.delivery_fee),
        "total": money(order.total),
        "deliveryAddress": order.delivery_address,
        "placedAt": order.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    if let Some(lines) = lines {
        order_json["lines"] = lines
            .iter()
            .map(|line| {
                json!({
                    "menuItemId": id(NodeKind::MenuItem, line.menu_item_id),
                    "name": line.name,
                    "quantity": line.quantity,
                    "unitPrice": money(line.unit_price),
                    "note": line.note,
                    "options": line.options.iter().map(|option| json!({
                        "optionId": id(NodeKind::MenuOption, option.option_id),
                        "group": option.group,
                        "name": option.name,
                        "priceDelta": money(option.price_delta),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
    }
    let mut data = json!({
        "order": order_json,
        "change": {
            "from": event.from_status.map(|status| status.to_value()),
            "to": event.to_status.to_value(),
            "actorId": event.actor_id.map(|actor| id(NodeKind::User, actor)),
            "reason": event.reason,
            "at": event.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        },
    });
    if let Some(courier) = courier_id {
        data["courierId"] = json!(id(NodeKind::User, courier));
    }
    Event {
        kind,
        restaurant_id: order.restaurant_id,
        at: event.created_at,
        data,
    }
}

/// `review.created` for `review`.
pub fn review_created(review: &entities::review::Model) -> Event {
    let id = |kind: NodeKind, id: i64| GlobalId::encode(kind, id).0;
    Event {
        kind: EventType::ReviewCreated,
        restaurant_id: review.restaurant_id,
        at: review.created_at,
        data: json!({
            "review": {
                "id": id(NodeKind::Review, review.id),
                "orderId": id(NodeKind::Order, review.order_id),
                "restaurantId": id(NodeKind::Restaurant, review.restaurant_id),
                "authorId": id(NodeKind::User, review.author_id),
                "rating": review.rating,
                "body": review.body,
                "createdAt": review.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            }
        }),
    }
}
