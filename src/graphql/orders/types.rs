//! `Order`, its lines and events, and `Delivery`.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Result};
use entities::{delivery, order, order_event, order_item};
use futures_util::future::BoxFuture;

pub use super::loaders::OrderOwner;
use crate::{
    auth::{Scope, Viewer, guards::viewer},
    error::AppError,
    graphql::{
        common::{GeoPoint, Money, Timestamp},
        loaders::Loaders,
        menu::types::{MenuItem, load_restaurant},
        orders::loaders::{DeliveryCursor, DeliveryPageKey, OrderPageKey},
        relay::{GlobalId, NodeKind, Page, PageArgs, PageInfo, encode_cursor},
        restaurants::types::{Edge, Restaurant},
        reviews::types::Review,
        users::types::User,
    },
    services::orders::{ChosenOption, can_see},
};

/// Where an order is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "entities::OrderStatus")]
pub enum OrderStatus {
    /// Sent by the customer; the restaurant has not answered yet.
    Placed,
    /// The restaurant will prepare it.
    Accepted,
    /// The restaurant declined it.
    Rejected,
    /// Being cooked.
    Preparing,
    /// Waiting for a courier at the restaurant.
    ReadyForPickup,
    /// On its way to the customer.
    PickedUp,
    /// Handed to the customer.
    Delivered,
    /// Called off by the customer, the restaurant or an admin.
    Cancelled,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "entities::DeliveryStatus")]
pub enum DeliveryStatus {
    /// A courier has taken the delivery and is heading to the restaurant.
    Claimed,
    /// The courier has the food.
    PickedUp,
    /// The customer has the food.
    Delivered,
    /// The order was cancelled after the courier claimed it.
    Cancelled,
}

/// What kind of change an order event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "entities::OrderEventKind")]
pub enum OrderEventKind {
    /// The order was placed (`fromStatus` is null) or moved from one status to another.
    StatusChanged,
    /// A courier claimed the delivery; the status stays `READY_FOR_PICKUP`.
    DeliveryClaimed,
}

/// Whether `viewer` may read `order` with its current credential.
pub async fn visible(ctx: &Context<'_>, order: &order::Model) -> Result<bool> {
    let viewer = viewer(ctx)?;
    if !viewer.allows(Scope::OrdersRead) {
        return Ok(false);
    }
    let delivery = ctx
        .data::<Loaders>()?
        .delivery_by_order
        .load_one(order.id)
        .await?;
    Ok(can_see(viewer, order, delivery.as_deref()))
}

/// A customer's order from one restaurant. Visible to its customer, the restaurant's staff,
/// its courier and admins.
#[derive(Clone)]
pub struct Order(
    pub Arc<order::Model>,
    /// The event that made this version, when known without reading it (a live update).
    Option<Arc<order_event::Model>>,
);

impl Order {
    pub fn new(order: Arc<order::Model>) -> Self {
        Self(order, None)
    }

    /// The order as `change` left it, with the change's event.
    pub fn of_change(change: &crate::events::OrderChange) -> Self {
        Self(change.order.clone(), Some(change.event.clone()))
    }
}

impl Order {
    /// The order's events, oldest first, through the request's loader.
    /// The arrival estimates, from the order's restaurant, events and delivery (all batched
    /// with the other orders of the request).
    async fn estimate(&self, ctx: &Context<'_>) -> Result<crate::services::orders::Estimate> {
        let loaders = ctx.data::<Loaders>()?;
        let (restaurant, events, delivery) = futures_util::try_join!(
            loaders.restaurants.load_one(self.0.restaurant_id),
            self.load_events(ctx),
            loaders.delivery_by_order.load_one(self.0.id),
        )?;
        let restaurant =
            restaurant.ok_or_else(|| crate::error::AppError::NotFound("restaurant".into()))?;
        Ok(crate::services::orders::estimate(
            &self.0,
            &restaurant,
            &events,
            delivery.as_deref(),
            chrono::Utc::now(),
        ))
    }

    async fn load_events(&self, ctx: &Context<'_>) -> Result<Arc<[order_event::Model]>> {
        Ok(ctx
            .data::<Loaders>()?
            .events_by_order
            .load_one(self.0.id)
            .await?
            .unwrap_or_default())
    }
}

impl From<order::Model> for Order {
    fn from(order: order::Model) -> Self {
        Self::new(Arc::new(order))
    }
}

/// A customer's order from one restaurant. Visible to its customer, the restaurant's staff,
/// its courier and admins.
#[Object]
impl Order {
    /// Global ID of the order.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::Order, self.0.id)
    }

    /// Where the order is in its lifecycle.
    async fn status(&self) -> OrderStatus {
        self.0.status.into()
    }

    /// How many times the order has changed, counting its placing as 1: every committed
    /// change (a status move, a courier's claim) adds one, so a client can tell which of two
    /// copies is newer and whether it missed one.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// Who ordered.
    async fn customer(&self, ctx: &Context<'_>) -> Result<User> {
        let user = ctx
            .data::<Loaders>()?
            .users
            .load_one(self.0.customer_id)
            .await?
            .ok_or_else(|| AppError::NotFound("user".into()))?;
        Ok(User(user))
    }

    /// Where from.
    async fn restaurant(&self, ctx: &Context<'_>) -> Result<Restaurant> {
        load_restaurant(ctx, self.0.restaurant_id).await
    }

    /// What was ordered, with names and prices as they were when ordering.
    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<OrderLine>> {
        let lines = ctx
            .data::<Loaders>()?
            .items_by_order
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        Ok(lines
            .iter()
            .map(|line| OrderLine {
                line: line.clone(),
                currency: self.0.currency.clone(),
            })
            .collect())
    }

    /// Sum of the lines.
    async fn subtotal(&self) -> Money {
        Money::from_minor(self.0.subtotal, &self.0.currency)
    }

    /// The restaurant's delivery fee.
    async fn delivery_fee(&self) -> Money {
        Money::from_minor(self.0.delivery_fee, &self.0.currency)
    }

    /// What the customer pays.
    async fn total(&self) -> Money {
        Money::from_minor(self.0.total, &self.0.currency)
    }

    /// Where to deliver (a copy of the saved address it was placed with, if any).
    async fn delivery_address(&self) -> &str {
        &self.0.delivery_address
    }

    /// Notes for the courier, copied from the saved address the order was placed with.
    async fn delivery_notes(&self) -> Option<&str> {
        self.0.delivery_notes.as_deref()
    }

    /// Where to deliver, on the map.
    async fn delivery_location(&self) -> GeoPoint {
        GeoPoint {
            latitude: self.0.delivery_latitude,
            longitude: self.0.delivery_longitude,
        }
    }

    /// The change that made this version of the order: in a live update, what just happened.
    async fn last_event(&self, ctx: &Context<'_>) -> Result<OrderEvent> {
        if let Some(event) = &self.1 {
            return Ok(OrderEvent(event.as_ref().clone()));
        }
        let events = self.load_events(ctx).await?;
        let made = events
            .iter()
            .rev()
            .find(|event| event.version == self.0.version);
        // Every order has its placing event, written with it.
        made.or(events.last())
            .cloned()
            .map(OrderEvent)
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("order {} has no events", self.0.id)).into()
            })
    }

    /// Every change, oldest first (status moves and the courier's claim): who made it, from
    /// where, to where, when, and which version it made.
    async fn events(&self, ctx: &Context<'_>) -> Result<Vec<OrderEvent>> {
        let events = self.load_events(ctx).await?;
        Ok(events.iter().cloned().map(OrderEvent).collect())
    }

    /// When the order should be ready for pickup: the time it was marked ready once it is;
    /// before that, when the kitchen started on it (or accepted it, or it was placed) plus the
    /// restaurant's `preparationMinutes`, and never earlier than now. Null for a rejected or
    /// cancelled order. Recomputed whenever the order is read, so live updates carry it too.
    async fn estimated_ready_at(&self, ctx: &Context<'_>) -> Result<Option<Timestamp>> {
        Ok(self.estimate(ctx).await?.ready_at.map(Timestamp))
    }

    /// When the order should arrive: the time it was delivered once it is; while the courier
    /// rides, from their last reported position (or the pickup) at 15 km/h along roads taken
    /// as 1.3 times the straight line; before the pickup, `estimatedReadyAt` plus that ride
    /// from the restaurant. Never earlier than now while still to come; null for a rejected or
    /// cancelled order.
    async fn estimated_delivery_at(&self, ctx: &Context<'_>) -> Result<Option<Timestamp>> {
        Ok(self.estimate(ctx).await?.delivered_at.map(Timestamp))
    }

    /// The delivery, once a courier has claimed it.
    async fn delivery(&self, ctx: &Context<'_>) -> Result<Option<Delivery>> {
        let delivery = ctx
            .data::<Loaders>()?
            .delivery_by_order
            .load_one(self.0.id)
            .await?;
        Ok(delivery.map(Delivery))
    }

    /// The customer's review, once written.
    async fn review(&self, ctx: &Context<'_>) -> Result<Option<Review>> {
        let review = ctx
            .data::<Loaders>()?
            .review_by_order
            .load_one(self.0.id)
            .await?;
        Ok(review.map(Review))
    }

    /// When it was placed.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }

    /// When it last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp(self.0.updated_at)
    }
}

/// One line of an order.
pub struct OrderLine {
    line: order_item::Model,
    currency: String,
}

/// One line of an order.
#[Object]
impl OrderLine {
    /// The menu item as it is on the menu now (its current price and availability), for
    /// "order again"; null once the restaurant has taken it off the menu. `name` and
    /// `unitPrice` keep what was ordered.
    async fn menu_item(&self, ctx: &Context<'_>) -> Result<Option<MenuItem>> {
        Ok(ctx
            .data::<Loaders>()?
            .menu_items
            .load_one(self.line.menu_item_id)
            .await?
            .filter(|item| item.deleted_at.is_none())
            .map(|item| MenuItem(Arc::new(item.as_ref().into()))))
    }

    /// The menu item's name when it was ordered.
    async fn name(&self) -> &str {
        &self.line.name
    }

    /// The options chosen, as the menu had them when ordering, in menu order.
    async fn options(&self) -> Vec<OrderLineOption> {
        serde_json::from_value::<Vec<ChosenOption>>(self.line.options.clone())
            .unwrap_or_default()
            .iter()
            .map(|option| OrderLineOption::new(option, &self.currency))
            .collect()
    }

    /// The price of one when it was ordered, with its options.
    async fn unit_price(&self) -> Money {
        Money::from_minor(self.line.unit_price, &self.currency)
    }

    /// How many.
    async fn quantity(&self) -> i32 {
        self.line.quantity
    }

    /// The customer's note for the kitchen.
    async fn note(&self) -> Option<&str> {
        self.line.note.as_deref()
    }

    /// Unit price times quantity.
    async fn line_total(&self) -> Money {
        Money::from_minor(
            self.line.unit_price * i64::from(self.line.quantity),
            &self.currency,
        )
    }
}

/// An option chosen for an order line ("Size: Large").
#[derive(async_graphql::SimpleObject)]
pub struct OrderLineOption {
    /// The option on the menu (`MenuOption.id`), to order the same again.
    pub option_id: ID,
    /// The name of its group, e.g. "Size".
    pub group_name: String,
    /// Its name, e.g. "Large".
    pub name: String,
    /// What it added to the price of one.
    pub price_delta: Money,
}

impl OrderLineOption {
    /// The API's view of `option`, priced in `currency`.
    pub fn new(option: &ChosenOption, currency: &str) -> Self {
        Self {
            option_id: GlobalId::encode(NodeKind::MenuOption, option.option_id),
            group_name: option.group.clone(),
            name: option.name.clone(),
            price_delta: Money::from_minor(option.price_delta, currency),
        }
    }
}

/// One change of an order: a status move, or a courier's claim.
pub struct OrderEvent(order_event::Model);

/// One change of an order: a status move, or a courier's claim.
#[Object]
impl OrderEvent {
    /// What kind of change.
    async fn kind(&self) -> OrderEventKind {
        self.0.kind.into()
    }

    /// The order's `version` this change made (1 for placing it).
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// The status before; null for the event that placed the order.
    async fn from_status(&self) -> Option<OrderStatus> {
        self.0.from_status.map(Into::into)
    }

    /// The status after.
    async fn to_status(&self) -> OrderStatus {
        self.0.to_status.into()
    }

    /// Who made the change.
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.actor_id else {
            return Ok(None);
        };
        Ok(ctx.data::<Loaders>()?.users.load_one(id).await?.map(User))
    }

    /// Why, when a reason was given (rejections, cancellations).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }

    /// When.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }
}

/// A courier's delivery of an order.
#[derive(Clone)]
pub struct Delivery(pub Arc<delivery::Model>);

/// A courier's delivery of an order. Visible to whoever may see the order: its customer, the
/// restaurant's staff, the courier and admins.
#[Object]
impl Delivery {
    /// Global ID of the delivery.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::Delivery, self.0.id)
    }

    /// The order delivered.
    async fn order(&self, ctx: &Context<'_>) -> Result<Order> {
        let order = ctx
            .data::<Loaders>()?
            .orders
            .load_one(self.0.order_id)
            .await?
            .ok_or_else(|| AppError::NotFound("order".into()))?;
        // A delivery is only reached through what may see its order; checked again here, so a
        // new path to a delivery cannot hand out an order its viewer may not see.
        if !visible(ctx, &order).await? {
            return Err(AppError::Forbidden.into());
        }
        Ok(Order::new(order))
    }

    /// Who delivers.
    async fn courier(&self, ctx: &Context<'_>) -> Result<User> {
        let user = ctx
            .data::<Loaders>()?
            .users
            .load_one(self.0.courier_id)
            .await?
            .ok_or_else(|| AppError::NotFound("user".into()))?;
        Ok(User(user))
    }

    /// Where the delivery is.
    async fn status(&self) -> DeliveryStatus {
        self.0.status.into()
    }

    /// The courier's last reported position.
    async fn last_location(&self) -> Option<GeoPoint> {
        Some(GeoPoint {
            latitude: self.0.last_latitude?,
            longitude: self.0.last_longitude?,
        })
    }

    /// When the position was reported.
    async fn location_updated_at(&self) -> Option<Timestamp> {
        self.0.location_updated_at.map(Timestamp)
    }

    /// When the courier took the delivery.
    async fn claimed_at(&self) -> Timestamp {
        Timestamp(self.0.claimed_at)
    }

    /// When the courier collected the food.
    async fn picked_up_at(&self) -> Option<Timestamp> {
        self.0.picked_up_at.map(Timestamp)
    }

    /// When the customer got the food.
    async fn delivered_at(&self) -> Option<Timestamp> {
        self.0.delivered_at.map(Timestamp)
    }
}

/// A page of orders, newest first.
pub struct OrderConnection {
    page: Arc<Page<Arc<order::Model>>>,
    args: PageArgs,
    owner: OrderOwner,
    status: Option<entities::OrderStatus>,
}

impl OrderConnection {
    /// The page `args` of `owner`'s orders, with `status` when given: batched with the pages
    /// of every other owner in the request (a list of restaurants with their orders is one
    /// statement).
    ///
    /// Boxed: async-graphql gives every field of an object a future the size of the type's
    /// largest resolver, and a DataLoader's is some hundreds of bytes; boxed, only the fields
    /// that load orders pay for it.
    pub fn load<'a>(
        ctx: &'a Context<'_>,
        owner: OrderOwner,
        status: Option<OrderStatus>,
        args: PageArgs,
    ) -> BoxFuture<'a, Result<Self>> {
        Box::pin(async move {
            let status = status.map(Into::into);
            let page = ctx
                .data::<Loaders>()?
                .order_pages
                .load_one(OrderPageKey {
                    owner,
                    status,
                    args: args.clone(),
                })
                .await?
                .unwrap_or_default();
            Ok(Self {
                page,
                args,
                owner,
                status,
            })
        })
    }
}

/// Where an order is in a page of orders: the one definition edges and `pageInfo` share.
fn order_position(order: &Arc<order::Model>) -> i64 {
    order.id
}

/// A page of orders, newest first.
#[Object]
impl OrderConnection {
    /// The orders of this page with their cursors.
    async fn edges(&self) -> Vec<Edge<Order, i64>> {
        self.page
            .items
            .iter()
            .map(|order| Edge {
                node: Order::new(order.clone()),
                position: order_position(order),
            })
            .collect()
    }

    /// The orders of this page.
    async fn nodes(&self) -> Vec<Order> {
        self.page
            .items
            .iter()
            .map(|order| Order::new(order.clone()))
            .collect()
    }

    /// Where this page is in the list.
    async fn page_info(&self) -> PageInfo {
        self.page
            .page_info(&self.args, |order| encode_cursor(&order_position(order)))
    }

    /// Number of orders over all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let count = ctx
            .data::<Loaders>()?
            .order_counts
            .load_one((self.owner, self.status))
            .await?
            .unwrap_or(0);
        Ok(i64::try_from(count).unwrap_or(i64::MAX))
    }
}

/// `FORBIDDEN` unless the viewer may read orders of the restaurant (staff, admin).
pub fn require_restaurant_orders(viewer: &Viewer, restaurant_id: i64) -> Result<(), AppError> {
    viewer.require_scope(Scope::OrdersRead)?;
    if viewer.is_staff_of(restaurant_id) || viewer.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// A page of a courier's deliveries: active ones first (claimed, picked up), then the rest,
/// each newest first.
pub struct DeliveryConnection {
    page: Arc<Page<Arc<delivery::Model>>>,
    args: PageArgs,
}

impl DeliveryConnection {
    /// The page `args` of `courier_id`'s deliveries, batched with every other courier's in the
    /// request. Boxed, like `OrderConnection::load`.
    pub fn load<'a>(
        ctx: &'a Context<'_>,
        courier_id: i64,
        args: PageArgs,
    ) -> BoxFuture<'a, Result<Self>> {
        Box::pin(async move {
            let page = ctx
                .data::<Loaders>()?
                .delivery_pages
                .load_one(DeliveryPageKey {
                    courier_id,
                    args: args.clone(),
                })
                .await?
                .unwrap_or_default();
            Ok(Self { page, args })
        })
    }
}

/// A page of a courier's deliveries: active ones first, then the rest, each newest first.
#[Object]
impl DeliveryConnection {
    /// The deliveries of this page with their cursors.
    async fn edges(&self) -> Vec<Edge<Delivery, DeliveryCursor>> {
        self.page
            .items
            .iter()
            .map(|delivery| Edge {
                node: Delivery(delivery.clone()),
                position: DeliveryCursor::from(&**delivery),
            })
            .collect()
    }

    /// Where this page is in the list.
    async fn page_info(&self) -> PageInfo {
        self.page.page_info(&self.args, |delivery| {
            encode_cursor(&DeliveryCursor::from(&**delivery))
        })
    }
}
