//! Orders: placing them (idempotently), moving them through their lifecycle, delivering and
//! reviewing them. Each call is one transaction; what it changed is returned so the caller can
//! publish it once the transaction has committed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entities::{
    DeliveryStatus, OrderEventKind, OrderStatus, delivery, menu_item, opening_hours, order,
    order_event, order_item, restaurant, review,
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    ErrorCode, InputError, ServiceResult, is_unique_violation,
    restaurants::{Point, local_minute_of_week, zone},
};
use crate::{
    auth::{Role, Viewer},
    db::begin_write,
    error::{AppError, AppResult},
    webhooks,
};

/// Most lines in one order.
pub const MAX_LINES: usize = 50;
/// Most of one item in one line.
pub const MAX_QUANTITY: i32 = 50;
/// Longest note on a line.
pub const MAX_NOTE_CHARS: usize = 200;
/// Longest delivery address.
pub const MAX_ADDRESS_CHARS: usize = 300;
/// Longest idempotency key.
pub const MAX_KEY_CHARS: usize = 100;
/// Longest review text.
pub const MAX_REVIEW_CHARS: usize = 2000;

/// One line of a new order.
#[derive(Debug, Clone, Serialize)]
pub struct LineInput {
    pub menu_item_id: i64,
    pub quantity: i32,
    pub note: Option<String>,
    /// The options chosen from the item's option groups.
    pub option_ids: Vec<i64>,
}

/// An option chosen for an order line, as the menu had it then: what the line keeps.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChosenOption {
    pub option_id: i64,
    /// The name of the option's group, e.g. "Size".
    pub group: String,
    pub name: String,
    /// What it added to the price of one, in minor units.
    pub price_delta: i64,
}

/// A line of a priced cart.
#[derive(Debug, Clone)]
pub struct PricedLine {
    /// The menu item as it is now.
    pub item: menu_item::Model,
    pub line: LineInput,
    /// The options chosen, in the menu's order of groups and options.
    pub options: Vec<ChosenOption>,
    /// The price of one with its options.
    pub unit_price: i64,
}

/// A new order, as the customer sent it.
#[derive(Debug, Clone, Serialize)]
pub struct PlaceOrder {
    pub restaurant_id: i64,
    pub lines: Vec<LineInput>,
    /// One of the customer's saved addresses. With it, `place` fills the three delivery fields
    /// (and the notes) from the address; they are left empty in the request (and in its
    /// fingerprint, so a retry matches however the address changed since).
    pub address_id: Option<i64>,
    pub delivery_address: String,
    pub latitude: f64,
    pub longitude: f64,
    #[serde(skip)]
    pub delivery_notes: Option<String>,
    #[serde(skip)]
    pub idempotency_key: String,
}

impl PlaceOrder {
    /// A hash of everything but the key: a retry carries the same, a new order does not.
    fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(
            serde_json::to_vec(self).expect("an order serializes"),
        ))
    }

    fn validate(&self) -> Result<(), InputError> {
        let key = self.idempotency_key.trim();
        if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
            return Err(InputError::new(
                "idempotencyKey",
                ErrorCode::Invalid,
                format!("an idempotency key of 1 to {MAX_KEY_CHARS} characters is needed"),
            ));
        }
        self.cart().validate()?;
        let address = self.delivery_address.trim();
        if address.is_empty() || address.chars().count() > MAX_ADDRESS_CHARS {
            return Err(InputError::new(
                "deliveryAddress",
                ErrorCode::Invalid,
                format!("a delivery address of 1 to {MAX_ADDRESS_CHARS} characters is needed"),
            ));
        }
        Ok(())
    }

    /// What the order buys, where to.
    fn cart(&self) -> Cart<'_> {
        Cart {
            restaurant_id: self.restaurant_id,
            lines: &self.lines,
            latitude: self.latitude,
            longitude: self.longitude,
        }
    }
}

/// What an order buys and where it goes: what `quoteOrder` prices and `placeOrder` places.
#[derive(Debug, Clone, Copy)]
pub struct Cart<'a> {
    pub restaurant_id: i64,
    pub lines: &'a [LineInput],
    pub latitude: f64,
    pub longitude: f64,
}

impl Cart<'_> {
    /// Checks the lines and the location.
    pub fn validate(&self) -> Result<(), InputError> {
        if self.lines.is_empty() || self.lines.len() > MAX_LINES {
            return Err(InputError::new(
                "lines",
                ErrorCode::Invalid,
                format!("an order has 1 to {MAX_LINES} lines"),
            ));
        }
        for (index, line) in self.lines.iter().enumerate() {
            if !(1..=MAX_QUANTITY).contains(&line.quantity) {
                return Err(InputError::in_list(
                    "lines",
                    index,
                    "quantity",
                    ErrorCode::Invalid,
                    format!("quantities are 1 to {MAX_QUANTITY}"),
                ));
            }
            if line.option_ids.len() > super::menu_options::MAX_GROUPS * 10 {
                return Err(InputError::in_list(
                    "lines",
                    index,
                    "optionIds",
                    ErrorCode::InvalidOptions,
                    "too many options",
                ));
            }
            if line
                .note
                .as_ref()
                .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
            {
                return Err(InputError::in_list(
                    "lines",
                    index,
                    "note",
                    ErrorCode::Invalid,
                    format!("notes are at most {MAX_NOTE_CHARS} characters"),
                ));
            }
        }
        super::location("deliveryLocation", self.latitude, self.longitude)?;
        Ok(())
    }
}

/// A cart priced from the menu, as it would be ordered now.
#[derive(Debug, Clone)]
pub struct Priced {
    pub restaurant: restaurant::Model,
    /// The lines in the cart's order, each with its menu item as it is now.
    pub lines: Vec<PricedLine>,
    pub subtotal: i64,
    pub delivery_fee: i64,
    pub total: i64,
}

/// Prices `cart` as `placeOrder` would at `now`: the restaurant exists, takes orders, delivers
/// to the location; every item is on its menu and available; prices from the menu. The one
/// place these rules live, for quotes and orders alike.
pub async fn price<C: ConnectionTrait>(
    db: &C,
    cart: Cart<'_>,
    now: DateTime<Utc>,
) -> ServiceResult<Priced> {
    let Some(restaurant) = restaurant::Entity::find_by_id(cart.restaurant_id)
        .one(db)
        .await?
    else {
        return Ok(Err(InputError::new(
            "restaurantId",
            ErrorCode::NotFound,
            "no such restaurant",
        )));
    };
    if let Some(until) = restaurant.paused_until.filter(|until| *until > now) {
        let local = until.with_timezone(&zone(&restaurant.time_zone));
        return Ok(Err(InputError::new(
            "restaurantId",
            ErrorCode::RestaurantPaused,
            format!(
                "{} is not taking orders until {} ({}; {})",
                restaurant.name,
                local.format("%H:%M"),
                restaurant.time_zone,
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        )));
    }
    if !is_open_now(db, &restaurant, now).await? {
        return Ok(Err(InputError::new(
            "restaurantId",
            ErrorCode::RestaurantClosed,
            "the restaurant is not taking orders right now",
        )));
    }
    let location = Point {
        latitude: cart.latitude,
        longitude: cart.longitude,
    };
    if !delivers_to(&restaurant, location) {
        return Ok(Err(InputError::new(
            "deliveryLocation",
            ErrorCode::OutsideDeliveryArea,
            format!(
                "{} delivers within {:.1} km; this address is {:.1} km away",
                restaurant.name,
                f64::from(restaurant.delivery_radius_m) / 1000.0,
                delivery_distance_km(&restaurant, location),
            ),
        )));
    }
    let items: HashMap<i64, menu_item::Model> = menu_item::Entity::find()
        .filter(crate::db::one_of(
            menu_item::Column::Id,
            &cart
                .lines
                .iter()
                .map(|l| l.menu_item_id)
                .collect::<Vec<_>>(),
            db.get_database_backend(),
        ))
        .filter(menu_item::Column::RestaurantId.eq(restaurant.id))
        .filter(menu_item::Column::DeletedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|item| (item.id, item))
        .collect();
    let item_ids: Vec<i64> = items.keys().copied().collect();
    let groups = super::menu_options::groups_of(db, &item_ids).await?;
    let mut subtotal: i64 = 0;
    let mut lines = Vec::with_capacity(cart.lines.len());
    for (index, line) in cart.lines.iter().enumerate() {
        let Some(item) = items.get(&line.menu_item_id) else {
            return Ok(Err(InputError::in_list(
                "lines",
                index,
                "menuItemId",
                ErrorCode::ItemNotFound,
                "an item is not on this restaurant's menu",
            )));
        };
        if !item.is_available {
            return Ok(Err(InputError::in_list(
                "lines",
                index,
                "menuItemId",
                ErrorCode::ItemUnavailable,
                format!("{} is sold out", item.name),
            )));
        }
        if item.currency != restaurant.currency {
            return Err(AppError::Internal(anyhow::anyhow!(
                "menu item {} is priced in another currency than its restaurant",
                item.id
            )));
        }
        let no_groups = Vec::new();
        let options = match choose(
            index,
            item,
            groups.get(&item.id).unwrap_or(&no_groups),
            line,
        ) {
            Ok(options) => options,
            Err(error) => return Ok(Err(error)),
        };
        let unit_price = item.price_amount + options.iter().map(|o| o.price_delta).sum::<i64>();
        subtotal += unit_price * i64::from(line.quantity);
        lines.push(PricedLine {
            item: item.clone(),
            line: LineInput {
                note: line.note.clone().filter(|n| !n.trim().is_empty()),
                ..line.clone()
            },
            options,
            unit_price,
        });
    }
    if subtotal < restaurant.minimum_order {
        let money = |minor| crate::graphql::common::Money::from_minor(minor, &restaurant.currency);
        return Ok(Err(InputError::new(
            "lines",
            ErrorCode::BelowMinimumOrder,
            format!(
                "{} takes orders from {} {}; this one is {} {}",
                restaurant.name,
                money(restaurant.minimum_order).amount,
                restaurant.currency,
                money(subtotal).amount,
                restaurant.currency
            ),
        )));
    }
    Ok(Ok(Priced {
        delivery_fee: restaurant.delivery_fee,
        total: subtotal + restaurant.delivery_fee,
        subtotal,
        lines,
        restaurant,
    }))
}

/// The options `line` (the cart's line `index`) chose for `item`, checked against the item's
/// `groups`: each is an available option of one of them, none twice, and each group gets
/// from its `min_choices` to its `max_choices`. In menu order.
fn choose(
    index: usize,
    item: &menu_item::Model,
    groups: &super::menu_options::Groups,
    line: &LineInput,
) -> Result<Vec<ChosenOption>, InputError> {
    let option_error = |at: usize, code: ErrorCode, message: String| {
        InputError::at(
            &[
                "lines".to_owned(),
                index.to_string(),
                "optionIds".to_owned(),
                at.to_string(),
            ],
            code,
            message,
        )
    };
    for (at, id) in line.option_ids.iter().enumerate() {
        if line.option_ids[..at].contains(id) {
            return Err(option_error(
                at,
                ErrorCode::InvalidOptions,
                "an option is chosen twice".to_owned(),
            ));
        }
        let option = groups
            .iter()
            .flat_map(|(_, options)| options)
            .find(|option| option.id == *id);
        match option {
            None => {
                return Err(option_error(
                    at,
                    ErrorCode::ItemNotFound,
                    format!("not an option of {}", item.name),
                ));
            }
            Some(option) if !option.is_available => {
                return Err(option_error(
                    at,
                    ErrorCode::ItemUnavailable,
                    format!("{} ({}) is sold out", option.name, item.name),
                ));
            }
            Some(_) => {}
        }
    }
    let mut chosen = Vec::new();
    for (group, options) in groups {
        let picked: Vec<_> = options
            .iter()
            .filter(|option| line.option_ids.contains(&option.id))
            .collect();
        let count = i32::try_from(picked.len()).unwrap_or(i32::MAX);
        if count < group.min_choices || count > group.max_choices {
            let wanted = if group.min_choices == group.max_choices {
                format!("exactly {}", group.min_choices)
            } else {
                format!("{} to {}", group.min_choices, group.max_choices)
            };
            return Err(InputError::in_list(
                "lines",
                index,
                "optionIds",
                ErrorCode::InvalidOptions,
                format!(
                    "choose {wanted} of \"{}\" for {} ({count} chosen)",
                    group.name, item.name
                ),
            ));
        }
        chosen.extend(picked.into_iter().map(|option| ChosenOption {
            option_id: option.id,
            group: group.name.clone(),
            name: option.name.clone(),
            price_delta: option.price_delta,
        }));
    }
    Ok(chosen)
}

/// Prices `cart` for a checkout screen: the same checks and numbers as placing it, nothing
/// written.
pub async fn quote(
    db: &DatabaseConnection,
    cart: Cart<'_>,
    now: DateTime<Utc>,
) -> ServiceResult<Priced> {
    if let Err(error) = cart.validate() {
        return Ok(Err(error));
    }
    price(db, cart, now).await
}

/// The distance a delivery area is measured in, in kilometres: equirectangular from the
/// delivery location, exactly as the `deliversTo` filter computes it in SQL, so browsing and
/// ordering agree on every address.
pub fn delivery_distance_km(restaurant: &restaurant::Model, to: Point) -> f64 {
    let scale = to.latitude.to_radians().cos();
    let (dlat, dlng) = (
        restaurant.latitude - to.latitude,
        (restaurant.longitude - to.longitude) * scale,
    );
    (dlat * dlat + dlng * dlng).sqrt() * super::restaurants::KM_PER_DEGREE
}

/// Whether `restaurant` delivers to `to`.
pub fn delivers_to(restaurant: &restaurant::Model, to: Point) -> bool {
    delivery_distance_km(restaurant, to) * 1000.0 <= f64::from(restaurant.delivery_radius_m)
}

/// A placed order and whether this call created it (false for a retry).
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: order::Model,
    pub created: bool,
}

/// Places an order for `customer_id`. The same key with the same payload returns the first
/// order, also when retries race; the same key with another payload is a user error.
pub async fn place(
    db: &DatabaseConnection,
    customer_id: i64,
    input: &PlaceOrder,
    now: DateTime<Utc>,
) -> ServiceResult<Placed> {
    let fingerprint = input.fingerprint();
    let mut input = input.clone();
    if let Some(id) = input.address_id {
        let Some(saved) = super::addresses::find_owned(db, customer_id, id).await? else {
            return Ok(Err(InputError::new(
                "addressId",
                ErrorCode::NotFound,
                "no such address of yours",
            )));
        };
        input.delivery_address = saved.one_line();
        input.latitude = saved.latitude;
        input.longitude = saved.longitude;
        input.delivery_notes = saved.courier_notes;
    }
    let input = &input;
    if let Err(error) = input.validate() {
        return Ok(Err(error));
    }
    if let Some(existing) = find_by_key(db, customer_id, &input.idempotency_key).await? {
        return Ok(replay(existing, &fingerprint));
    }
    let txn = begin_write(db).await?;
    let outcome = match insert_order(&txn, customer_id, input, &fingerprint, now).await {
        Ok(Ok(placed)) => txn.commit().await.map(|()| placed).map_err(AppError::from),
        Ok(Err(error)) => return Ok(Err(error)),
        Err(error) => {
            txn.rollback().await.ok();
            Err(error)
        }
    };
    match outcome {
        Ok(placed) => Ok(Ok(placed)),
        // A racing retry won the unique key: answer with its order.
        Err(error) => match find_by_key(db, customer_id, &input.idempotency_key).await? {
            Some(existing) => Ok(replay(existing, &fingerprint)),
            None => Err(error),
        },
    }
}

fn replay(existing: order::Model, fingerprint: &str) -> Result<Placed, InputError> {
    if existing.request_fingerprint == fingerprint {
        Ok(Placed {
            order: existing,
            created: false,
        })
    } else {
        Err(InputError::new(
            "idempotencyKey",
            ErrorCode::IdempotencyKeyReused,
            "this idempotency key was used for a different order",
        ))
    }
}

async fn find_by_key<C: ConnectionTrait>(
    db: &C,
    customer_id: i64,
    key: &str,
) -> AppResult<Option<order::Model>> {
    Ok(order::Entity::find()
        .filter(order::Column::CustomerId.eq(customer_id))
        .filter(order::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?)
}

/// Whether `restaurant` takes orders at `now`: switched on and within its hours.
pub async fn is_open_now<C: ConnectionTrait>(
    db: &C,
    restaurant: &restaurant::Model,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    if !restaurant.is_open || restaurant.paused_until.is_some_and(|until| until > now) {
        return Ok(false);
    }
    let zone = zone(&restaurant.time_zone);
    let minute = local_minute_of_week(zone, now);
    let hours = opening_hours::Entity::find()
        .filter(opening_hours::Column::RestaurantId.eq(restaurant.id))
        .filter(opening_hours::Column::OpensAt.lte(minute))
        .filter(opening_hours::Column::ClosesAt.gt(minute))
        .one(db)
        .await?;
    if hours.is_none() {
        return Ok(false);
    }
    let today = now.with_timezone(&zone).date_naive();
    let closed = entities::restaurant_closure::Entity::find()
        .filter(entities::restaurant_closure::Column::RestaurantId.eq(restaurant.id))
        .filter(entities::restaurant_closure::Column::StartsOn.lte(today))
        .filter(entities::restaurant_closure::Column::EndsOn.gte(today))
        .one(db)
        .await?;
    Ok(closed.is_none())
}

async fn insert_order(
    txn: &DatabaseTransaction,
    customer_id: i64,
    input: &PlaceOrder,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> ServiceResult<Placed> {
    // Inside the write transaction: a retry that lost the race finds the winner here, and
    // answers with it as a replay (it created nothing, so nothing is announced).
    if let Some(existing) = find_by_key(txn, customer_id, &input.idempotency_key).await? {
        return Ok(replay(existing, fingerprint));
    }
    let priced = match price(txn, input.cart(), now).await? {
        Ok(priced) => priced,
        Err(error) => return Ok(Err(error)),
    };
    let Priced {
        restaurant,
        subtotal,
        ..
    } = &priced;
    let order = order::ActiveModel {
        customer_id: Set(customer_id),
        restaurant_id: Set(restaurant.id),
        status: Set(OrderStatus::Placed),
        subtotal: Set(*subtotal),
        delivery_fee: Set(priced.delivery_fee),
        total: Set(priced.total),
        currency: Set(restaurant.currency.clone()),
        delivery_address: Set(input.delivery_address.trim().to_owned()),
        delivery_latitude: Set(input.latitude),
        delivery_longitude: Set(input.longitude),
        delivery_notes: Set(input.delivery_notes.clone()),
        idempotency_key: Set(input.idempotency_key.clone()),
        request_fingerprint: Set(fingerprint.to_owned()),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    order_item::Entity::insert_many(priced.lines.iter().map(|priced| order_item::ActiveModel {
        order_id: Set(order.id),
        menu_item_id: Set(priced.item.id),
        name: Set(priced.item.name.clone()),
        unit_price: Set(priced.unit_price),
        quantity: Set(priced.line.quantity),
        note: Set(priced.line.note.clone()),
        options: Set(serde_json::to_value(&priced.options).expect("options serialize")),
        ..Default::default()
    }))
    .exec_without_returning(txn)
    .await?;
    let lines: Vec<webhooks::LineFacts<'_>> = priced
        .lines
        .iter()
        .map(|priced| webhooks::LineFacts {
            menu_item_id: priced.item.id,
            name: &priced.item.name,
            unit_price: priced.unit_price,
            quantity: priced.line.quantity,
            note: priced.line.note.as_deref(),
            options: &priced.options,
        })
        .collect();
    record_event(
        txn,
        &order,
        Change {
            order_id: order.id,
            actor_id: Some(customer_id),
            from: None,
            to: OrderStatus::Placed,
            kind: OrderEventKind::StatusChanged,
            reason: None,
            version: order.version,
        },
        now,
        Some(&lines),
        None,
    )
    .await?;
    Ok(Ok(Placed {
        order,
        created: true,
    }))
}

/// One change of an order, as its event row records it.
struct Change {
    order_id: i64,
    actor_id: Option<i64>,
    from: Option<OrderStatus>,
    to: OrderStatus,
    kind: OrderEventKind,
    reason: Option<String>,
    /// The order's version after the change.
    version: i32,
}

/// Writes the event of `change` to `order` in the change's own transaction, with the webhook
/// deliveries it makes (`lines` of a placed order and the courier go into their payload): the
/// log live updates are read from, and the webhooks' outbox, hold exactly the changes that
/// committed.
async fn record_event(
    txn: &DatabaseTransaction,
    order: &order::Model,
    change: Change,
    now: DateTime<Utc>,
    lines: Option<&[webhooks::LineFacts<'_>]>,
    courier_id: Option<i64>,
) -> AppResult<order_event::Model> {
    let event = order_event::ActiveModel {
        order_id: Set(change.order_id),
        actor_id: Set(change.actor_id),
        from_status: Set(change.from),
        to_status: Set(change.to),
        reason: Set(change.reason),
        created_at: Set(now),
        version: Set(change.version),
        kind: Set(change.kind),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    webhooks::enqueue(txn, webhooks::order_event(order, &event, lines, courier_id)).await?;
    Ok(event)
}

/// Whether `viewer` may see `order`: its customer, the restaurant's staff, its courier, admins.
pub fn can_see(viewer: &Viewer, order: &order::Model, delivery: Option<&delivery::Model>) -> bool {
    may_see(
        viewer,
        order,
        delivery.map(|d| d.courier_id),
        // The viewer's own memberships, as read when they signed in.
        |_| viewer.is_staff_of(order.restaurant_id),
    )
}

/// The one rule of who sees an order, for any source of its courier and its restaurant's staff:
/// its customer, a viewer `is_staff` (given their user id) says works at its restaurant, its
/// courier, admins.
pub fn may_see(
    viewer: &Viewer,
    order: &order::Model,
    courier: Option<i64>,
    is_staff: impl FnOnce(i64) -> bool,
) -> bool {
    let Some(user) = viewer.user() else {
        return false;
    };
    viewer.is_admin()
        || order.customer_id == user.id
        || is_staff(user.id)
        || courier == Some(user.id)
        // Every courier sees a ready order nobody claimed (the work on offer, with its pickup
        // and drop-off), until one claims it.
        || (courier.is_none()
            && order.status == OrderStatus::ReadyForPickup
            && viewer.has_role(Role::Courier))
}

/// A move of an order's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Accept,
    Reject,
    StartPreparing,
    MarkReady,
    Cancel,
    ConfirmPickup,
    ConfirmDelivery,
}

impl Move {
    /// The status the move leads to.
    pub fn target(self) -> OrderStatus {
        match self {
            Self::Accept => OrderStatus::Accepted,
            Self::Reject => OrderStatus::Rejected,
            Self::StartPreparing => OrderStatus::Preparing,
            Self::MarkReady => OrderStatus::ReadyForPickup,
            Self::Cancel => OrderStatus::Cancelled,
            Self::ConfirmPickup => OrderStatus::PickedUp,
            Self::ConfirmDelivery => OrderStatus::Delivered,
        }
    }
}

/// Loads an order the viewer may see, inside `txn`; strangers get `NOT_FOUND` so they learn
/// nothing about orders that are not theirs.
async fn visible_order(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    order_id: i64,
) -> AppResult<Result<(order::Model, Option<delivery::Model>), InputError>> {
    let not_found = || InputError::new("orderId", ErrorCode::NotFound, "no such order");
    let Some(order) = order::Entity::find_by_id(order_id).one(txn).await? else {
        return Ok(Err(not_found()));
    };
    let delivery = delivery::Entity::find()
        .filter(delivery::Column::OrderId.eq(order_id))
        .one(txn)
        .await?;
    if !can_see(viewer, &order, delivery.as_ref()) {
        return Ok(Err(not_found()));
    }
    Ok(Ok((order, delivery)))
}

/// Bumps the order's version if nobody changed it since it was read: of two racing changes,
/// exactly one passes.
async fn claim_version(
    txn: &DatabaseTransaction,
    order: &order::Model,
    status: OrderStatus,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let result = order::Entity::update_many()
        .col_expr(order::Column::Status, Expr::value(status))
        .col_expr(
            order::Column::Version,
            Expr::col(order::Column::Version).add(1),
        )
        .col_expr(order::Column::UpdatedAt, Expr::value(now))
        .filter(order::Column::Id.eq(order.id))
        .filter(order::Column::Version.eq(order.version))
        .exec(txn)
        .await?;
    Ok(result.rows_affected == 1)
}

fn conflict() -> InputError {
    InputError::new(
        "orderId",
        ErrorCode::Conflict,
        "the order changed meanwhile; reload it and try again",
    )
}

/// Moves an order to the next status of `mv`, as `viewer`, recording the event.
pub async fn move_order(
    db: &DatabaseConnection,
    viewer: &Viewer,
    order_id: i64,
    mv: Move,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> ServiceResult<order::Model> {
    let user = viewer.require_user()?.clone();
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_NOTE_CHARS)
    {
        return Ok(Err(InputError::new(
            "reason",
            ErrorCode::Invalid,
            format!("at most {MAX_NOTE_CHARS} characters"),
        )));
    }
    if mv == Move::Reject && reason.is_none() {
        return Ok(Err(InputError::new(
            "reason",
            ErrorCode::Invalid,
            "say why the order is rejected",
        )));
    }
    let txn = begin_write(db).await?;
    let (order, delivery) = match visible_order(&txn, viewer, order_id).await? {
        Ok(found) => found,
        Err(error) => return Ok(Err(error)),
    };
    let staff = viewer.is_staff_of(order.restaurant_id) || viewer.is_admin();
    let courier = delivery.as_ref().is_some_and(|d| d.courier_id == user.id);
    let allowed = match mv {
        Move::Accept | Move::Reject | Move::StartPreparing | Move::MarkReady => staff,
        Move::Cancel => staff || order.customer_id == user.id,
        Move::ConfirmPickup | Move::ConfirmDelivery => courier,
    };
    if !allowed {
        return Err(AppError::Forbidden);
    }
    let target = mv.target();
    if !order.status.can_move_to(target) {
        return Ok(Err(invalid_transition(order.status, target)));
    }
    if mv == Move::Cancel && !staff && order.status != OrderStatus::Placed {
        return Ok(Err(InputError::new(
            "orderId",
            ErrorCode::InvalidTransition,
            "customers can cancel only until the restaurant accepts the order",
        )));
    }
    if mv == Move::Cancel && delivery.is_some() {
        // A courier is on the way; cancelling is still allowed and frees them. The delivery
        // stays, cancelled, so the courier keeps seeing what happened to it.
        set_delivery_status(&txn, order.id, DeliveryStatus::Cancelled, now).await?;
    }
    if mv == Move::ConfirmPickup && delivery.is_none() {
        return Ok(Err(InputError::new(
            "orderId",
            ErrorCode::NotClaimed,
            "claim the delivery first",
        )));
    }
    if !claim_version(&txn, &order, target, now).await? {
        return Ok(Err(conflict()));
    }
    match mv {
        Move::ConfirmPickup => {
            set_delivery_status(&txn, order.id, DeliveryStatus::PickedUp, now).await?;
        }
        Move::ConfirmDelivery => {
            set_delivery_status(&txn, order.id, DeliveryStatus::Delivered, now).await?;
        }
        _ => {}
    }
    record_event(
        &txn,
        &order,
        Change {
            order_id: order.id,
            actor_id: Some(user.id),
            from: Some(order.status),
            to: target,
            kind: OrderEventKind::StatusChanged,
            reason,
            version: order.version + 1,
        },
        now,
        None,
        delivery.as_ref().map(|d| d.courier_id),
    )
    .await?;
    let updated = order::Entity::find_by_id(order.id)
        .one(&txn)
        .await?
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!("order vanished in its own transaction"))
        })?;
    txn.commit().await?;
    Ok(Ok(updated))
}

fn invalid_transition(from: OrderStatus, to: OrderStatus) -> InputError {
    InputError::new(
        "orderId",
        ErrorCode::InvalidTransition,
        format!("an order that is {from:?} cannot become {to:?}"),
    )
}

async fn set_delivery_status(
    txn: &DatabaseTransaction,
    order_id: i64,
    status: DeliveryStatus,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let mut update = delivery::Entity::update_many()
        .col_expr(delivery::Column::Status, Expr::value(status))
        .filter(delivery::Column::OrderId.eq(order_id));
    update = match status {
        DeliveryStatus::PickedUp => update.col_expr(delivery::Column::PickedUpAt, Expr::value(now)),
        DeliveryStatus::Delivered => {
            update.col_expr(delivery::Column::DeliveredAt, Expr::value(now))
        }
        DeliveryStatus::Claimed | DeliveryStatus::Cancelled => update,
    };
    update.exec(txn).await?;
    Ok(())
}

/// A courier takes a ready order that nobody has claimed.
pub async fn claim_delivery(
    db: &DatabaseConnection,
    viewer: &Viewer,
    order_id: i64,
    now: DateTime<Utc>,
) -> ServiceResult<(order::Model, delivery::Model)> {
    viewer.require_role(Role::Courier)?;
    let courier_id = viewer.require_user()?.id;
    let txn = begin_write(db).await?;
    let not_found = || InputError::new("orderId", ErrorCode::NotFound, "no such order");
    let Some(order) = order::Entity::find_by_id(order_id).one(&txn).await? else {
        return Ok(Err(not_found()));
    };
    let existing = delivery::Entity::find()
        .filter(delivery::Column::OrderId.eq(order_id))
        .one(&txn)
        .await?;
    // Couriers may learn of an order only while it is ready for pickup (every courier saw it in
    // `availableDeliveries`), or when they may see it anyway; anything else would let couriers
    // map other people's orders.
    let listed = order.status == OrderStatus::ReadyForPickup;
    if !listed && !can_see(viewer, &order, existing.as_ref()) {
        return Ok(Err(not_found()));
    }
    if existing.is_some() {
        return Ok(Err(InputError::new(
            "orderId",
            ErrorCode::AlreadyClaimed,
            "another courier has this delivery",
        )));
    }
    if order.status != OrderStatus::ReadyForPickup {
        return Ok(Err(InputError::new(
            "orderId",
            ErrorCode::InvalidTransition,
            "only orders ready for pickup can be claimed",
        )));
    }
    // The version bump makes a claim and any other change of the order exclude each other.
    if !claim_version(&txn, &order, order.status, now).await? {
        return Ok(Err(InputError::new(
            "orderId",
            ErrorCode::AlreadyClaimed,
            "another courier has this delivery",
        )));
    }
    let delivery = delivery::ActiveModel {
        order_id: Set(order.id),
        courier_id: Set(courier_id),
        status: Set(DeliveryStatus::Claimed),
        last_latitude: Set(None),
        last_longitude: Set(None),
        location_updated_at: Set(None),
        claimed_at: Set(now),
        picked_up_at: Set(None),
        delivered_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let delivery = match delivery {
        Ok(delivery) => delivery,
        Err(error) if is_unique_violation(&error) => {
            return Ok(Err(InputError::new(
                "orderId",
                ErrorCode::AlreadyClaimed,
                "another courier has this delivery",
            )));
        }
        Err(error) => return Err(error.into()),
    };
    record_event(
        &txn,
        &order,
        Change {
            order_id: order.id,
            actor_id: Some(courier_id),
            from: Some(order.status),
            to: order.status,
            kind: OrderEventKind::DeliveryClaimed,
            reason: None,
            version: order.version + 1,
        },
        now,
        None,
        Some(courier_id),
    )
    .await?;
    let order = order::Entity::find_by_id(order.id)
        .one(&txn)
        .await?
        .unwrap_or(order);
    txn.commit().await?;
    Ok(Ok((order, delivery)))
}

/// The courier of an order reports where they are.
pub async fn update_location(
    db: &DatabaseConnection,
    viewer: &Viewer,
    order_id: i64,
    latitude: f64,
    longitude: f64,
    now: DateTime<Utc>,
) -> ServiceResult<delivery::Model> {
    let user_id = viewer.require_user()?.id;
    if let Err(error) = super::location("location", latitude, longitude) {
        return Ok(Err(error));
    }
    let txn = begin_write(db).await?;
    let (order, delivery) = match visible_order(&txn, viewer, order_id).await? {
        Ok(found) => found,
        Err(error) => return Ok(Err(error)),
    };
    let Some(delivery) = delivery.filter(|d| d.courier_id == user_id) else {
        return Err(AppError::Forbidden);
    };
    if !matches!(
        order.status,
        OrderStatus::ReadyForPickup | OrderStatus::PickedUp
    ) {
        return Ok(Err(InputError::new(
            "orderId",
            ErrorCode::InvalidTransition,
            "the delivery is over",
        )));
    }
    let mut active: delivery::ActiveModel = delivery.into();
    active.last_latitude = Set(Some(latitude));
    active.last_longitude = Set(Some(longitude));
    active.location_updated_at = Set(Some(now));
    let delivery = active.update(&txn).await?;
    txn.commit().await?;
    Ok(Ok(delivery))
}

/// The customer of a delivered order reviews it, once; the restaurant's rating follows in
/// the same transaction.
pub async fn create_review(
    db: &DatabaseConnection,
    viewer: &Viewer,
    order_id: i64,
    rating: i32,
    body: &str,
    now: DateTime<Utc>,
) -> ServiceResult<review::Model> {
    let user_id = viewer.require_user()?.id;
    if !(1..=5).contains(&rating) {
        return Ok(Err(InputError::new(
            "rating",
            ErrorCode::Invalid,
            "ratings are 1 to 5",
        )));
    }
    if body.chars().count() > MAX_REVIEW_CHARS {
        return Ok(Err(InputError::new(
            "body",
            ErrorCode::Invalid,
            format!("at most {MAX_REVIEW_CHARS} characters"),
        )));
    }
    let txn = begin_write(db).await?;
    let (order, _) = match visible_order(&txn, viewer, order_id).await? {
        Ok(found) => found,
        Err(error) => return Ok(Err(error)),
    };
    if order.customer_id != user_id {
        return Err(AppError::Forbidden);
    }
    if order.status != OrderStatus::Delivered {
        return Ok(Err(InputError::new(
            "orderId",
            ErrorCode::NotDelivered,
            "only delivered orders can be reviewed",
        )));
    }
    let existing = review::Entity::find()
        .filter(review::Column::OrderId.eq(order_id))
        .one(&txn)
        .await?;
    if existing.is_some() {
        return Ok(Err(InputError::new(
            "orderId",
            ErrorCode::AlreadyReviewed,
            "this order has a review",
        )));
    }
    let review = review::ActiveModel {
        order_id: Set(order.id),
        restaurant_id: Set(order.restaurant_id),
        author_id: Set(user_id),
        rating: Set(rating),
        body: Set(body.trim().to_owned()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    let review = match review {
        Ok(review) => review,
        // A racing review of the same order won the unique index.
        Err(error) if is_unique_violation(&error) => {
            return Ok(Err(InputError::new(
                "orderId",
                ErrorCode::AlreadyReviewed,
                "this order has a review",
            )));
        }
        Err(error) => return Err(error.into()),
    };
    restaurant::Entity::update_many()
        .col_expr(
            restaurant::Column::RatingSum,
            Expr::col(restaurant::Column::RatingSum).add(rating),
        )
        .col_expr(
            restaurant::Column::RatingCount,
            Expr::col(restaurant::Column::RatingCount).add(1),
        )
        .filter(restaurant::Column::Id.eq(order.restaurant_id))
        .exec(&txn)
        .await?;
    webhooks::enqueue(&txn, webhooks::review_created(&review)).await?;
    txn.commit().await?;
    Ok(Ok(review))
}

/// The speed couriers are assumed to ride at, in km/h (a bicycle in city traffic).
pub const COURIER_SPEED_KMH: f64 = 15.0;
/// How much longer the way by road is than the straight line.
pub const ROAD_FACTOR: f64 = 1.3;

/// When an order should be ready and arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub ready_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How long a courier takes from `from` to `to`.
fn ride(from: Point, to: Point) -> chrono::Duration {
    let hours = from.distance_km(to) * ROAD_FACTOR / COURIER_SPEED_KMH;
    chrono::Duration::seconds((hours * 3600.0).round() as i64)
}

/// When `order` should be ready and delivered, seen at `now`, from its restaurant's
/// preparation time, its `events` (when it was accepted, started, made ready, picked up,
/// delivered), the distance, and its courier's last reported position. Never earlier than
/// `now` while still to come; the actual time once it happened; none for an order that was
/// rejected or cancelled.
pub fn estimate(
    order: &order::Model,
    restaurant: &restaurant::Model,
    events: &[order_event::Model],
    delivery: Option<&delivery::Model>,
    now: DateTime<Utc>,
) -> Estimate {
    if matches!(order.status, OrderStatus::Rejected | OrderStatus::Cancelled) {
        return Estimate {
            ready_at: None,
            delivered_at: None,
        };
    }
    let reached = |status: OrderStatus| {
        events
            .iter()
            .filter(|event| {
                event.kind == OrderEventKind::StatusChanged && event.to_status == status
            })
            .map(|event| event.created_at)
            .next_back()
    };
    let ready_at = reached(OrderStatus::ReadyForPickup).unwrap_or_else(|| {
        let started = reached(OrderStatus::Preparing)
            .or_else(|| reached(OrderStatus::Accepted))
            .unwrap_or(order.created_at);
        std::cmp::max(
            started + chrono::Duration::minutes(i64::from(restaurant.preparation_minutes)),
            now,
        )
    });
    let pickup = Point {
        latitude: restaurant.latitude,
        longitude: restaurant.longitude,
    };
    let drop_off = Point {
        latitude: order.delivery_latitude,
        longitude: order.delivery_longitude,
    };
    let delivered_at = match order.status {
        OrderStatus::Delivered => reached(OrderStatus::Delivered).unwrap_or(order.updated_at),
        OrderStatus::PickedUp => {
            let picked_up = reached(OrderStatus::PickedUp).unwrap_or(order.updated_at);
            // From the courier's last position when they reported one since the pickup.
            let last = delivery.and_then(|d| {
                Some((
                    Point {
                        latitude: d.last_latitude?,
                        longitude: d.last_longitude?,
                    },
                    d.location_updated_at.filter(|at| *at >= picked_up)?,
                ))
            });
            let (from, since) = last.unwrap_or((pickup, picked_up));
            std::cmp::max(since + ride(from, drop_off), now)
        }
        _ => std::cmp::max(ready_at, now) + ride(pickup, drop_off),
    };
    Estimate {
        ready_at: Some(ready_at),
        delivered_at: Some(delivered_at),
    }
}

/// Where an order stands in the couriers' list: its restaurant's distance key from the
/// courier (`restaurants::distance_key`, none without a position) and its id.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AvailablePosition {
    #[serde(rename = "d", skip_serializing_if = "Option::is_none", default)]
    pub distance_key: Option<f64>,
    pub id: i64,
}

/// A ready order in the couriers' list, with its restaurant (the pickup).
#[derive(Debug, Clone)]
pub struct Available {
    pub order: order::Model,
    pub restaurant: restaurant::Model,
    pub position: AvailablePosition,
}

/// The distance key of `restaurant` from `point`, computed exactly as
/// `restaurants::distance_key` does in SQL (the same operations in the same order), so a
/// cursor holding it finds its place again.
fn distance_key_of(restaurant: &restaurant::Model, point: Point) -> f64 {
    let scale = point.latitude.to_radians().cos();
    let dlat = restaurant.latitude - point.latitude;
    let dlng = (restaurant.longitude - point.longitude) * scale;
    dlat * dlat + dlng * dlng
}

fn unclaimed_and_ready() -> sea_orm::Condition {
    let unclaimed = Expr::exists(
        sea_orm::sea_query::Query::select()
            .expr(Expr::val(1))
            .from(delivery::Entity)
            .and_where(
                Expr::col((delivery::Entity, delivery::Column::OrderId))
                    .equals((order::Entity, order::Column::Id)),
            )
            .take(),
    )
    .not();
    sea_orm::Condition::all()
        .add(order::Column::Status.eq(OrderStatus::ReadyForPickup))
        .add(unclaimed)
}

/// Ready orders nobody has claimed, nearest first from `near` (oldest first without it),
/// `limit` of them after `after`.
pub async fn available_for_couriers(
    db: &DatabaseConnection,
    near: Option<Point>,
    after: Option<AvailablePosition>,
    limit: u64,
) -> AppResult<Vec<Available>> {
    use sea_orm::{Order as SortOrder, QueryOrder, QuerySelect};
    let mut select = order::Entity::find()
        .find_also_related(restaurant::Entity)
        .filter(unclaimed_and_ready());
    let id = || Expr::col((order::Entity, order::Column::Id));
    match (near, after) {
        (Some(point), Some(after)) => {
            let key = after.distance_key.ok_or_else(|| {
                AppError::bad_input("this cursor was made without `near`; pass the same `near`")
            })?;
            let distance = super::restaurants::distance_key(point);
            select = select.filter(
                distance
                    .clone()
                    .gt(key)
                    .or(distance.eq(key).and(id().gt(after.id))),
            );
        }
        (None, Some(after)) => {
            if after.distance_key.is_some() {
                return Err(AppError::bad_input(
                    "this cursor was made with `near`; pass the same `near`",
                ));
            }
            select = select.filter(id().gt(after.id));
        }
        (_, None) => {}
    }
    if let Some(point) = near {
        select = select.order_by(super::restaurants::distance_key(point), SortOrder::Asc);
    }
    Ok(select
        .order_by_asc(order::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(order, restaurant)| {
            let restaurant = restaurant?;
            let position = AvailablePosition {
                distance_key: near.map(|point| distance_key_of(&restaurant, point)),
                id: order.id,
            };
            Some(Available {
                order,
                restaurant,
                position,
            })
        })
        .collect())
}

/// How many ready orders nobody has claimed.
pub async fn count_available(db: &DatabaseConnection) -> AppResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(order::Entity::find()
        .filter(unclaimed_and_ready())
        .count(db)
        .await?)
}
