//! Placing orders and moving them through their lifecycle; reviews.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::types::{Delivery, Order};
use crate::{
    auth::{
        Role, Scope,
        guards::{ScopeGuard, viewer},
    },
    events::EventBus,
    graphql::{
        common::GeoPointInput,
        payloads::UserError,
        relay::{GlobalId, NodeKind},
        reviews::types::Review,
    },
    services::{
        InputError,
        orders::{self as service, LineInput, Move, PlaceOrder},
    },
};

/// One line of a new order.
#[derive(InputObject)]
pub struct OrderLineInput {
    /// The menu item.
    pub menu_item_id: ID,
    /// How many, 1 to 50.
    pub quantity: i32,
    /// A note for the kitchen, at most 200 characters.
    pub note: Option<String>,
    /// The options chosen from the item's `optionGroups` (`MenuOption.id`s), each once; every
    /// group needs from its `minChoices` to its `maxChoices`. Priced from the menu.
    #[graphql(default)]
    pub option_ids: Vec<ID>,
}

/// The lines of an order as the services take them.
pub fn decode_lines(lines: &[OrderLineInput]) -> Result<Vec<LineInput>> {
    lines
        .iter()
        .map(|line| {
            Ok(LineInput {
                menu_item_id: GlobalId::decode_as(&line.menu_item_id, NodeKind::MenuItem)?,
                quantity: line.quantity,
                note: line.note.clone(),
                option_ids: line
                    .option_ids
                    .iter()
                    .map(|id| GlobalId::decode_as(id, NodeKind::MenuOption))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

/// A new order. Prices come from the menu, never from here.
#[derive(InputObject)]
pub struct PlaceOrderInput {
    /// The restaurant.
    pub restaurant_id: ID,
    /// What to order, 1 to 50 lines of the restaurant's available items.
    pub lines: Vec<OrderLineInput>,
    /// One of the viewer's saved addresses (`viewer.addresses`): the order copies its address,
    /// location and courier notes. Instead of `deliveryAddress` and `deliveryLocation`.
    pub address_id: Option<ID>,
    /// Where to deliver, typed at checkout (1 to 300 characters); with `deliveryLocation`,
    /// unless `addressId` is given.
    pub delivery_address: Option<String>,
    /// Where to deliver, on the map; with `deliveryAddress`, unless `addressId` is given.
    pub delivery_location: Option<GeoPointInput>,
    /// A key of the client's choosing, unique per order: retrying with the same key and the
    /// same order returns the first order instead of placing another.
    pub idempotency_key: String,
}

/// Where an order goes, as `placeOrder` takes it: a saved address by id, or a typed address
/// with its location; never both, never neither.
pub struct Destination {
    pub address_id: Option<i64>,
    pub address: String,
    pub location: Option<GeoPointInput>,
}

impl Destination {
    /// Checks that exactly one way was used.
    pub fn new(
        address_id: Option<&ID>,
        address: Option<String>,
        location: Option<GeoPointInput>,
    ) -> Result<Result<Self, InputError>> {
        let address_id = address_id
            .map(|id| GlobalId::decode_as(id, NodeKind::Address))
            .transpose()?;
        Ok(match (address_id, address, location) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(InputError::new(
                "addressId",
                crate::services::ErrorCode::Invalid,
                "choose a saved address or type one, not both",
            )),
            (Some(id), None, None) => Ok(Self {
                address_id: Some(id),
                address: String::new(),
                location: None,
            }),
            (None, None, _) => Err(InputError::new(
                "deliveryAddress",
                crate::services::ErrorCode::Invalid,
                "type the address or choose a saved one (addressId)",
            )),
            (None, Some(_), None) => Err(InputError::new(
                "deliveryLocation",
                crate::services::ErrorCode::Invalid,
                "the location of the address is needed",
            )),
            (None, Some(address), Some(location)) => Ok(Self {
                address_id: None,
                address,
                location: Some(location),
            }),
        })
    }
}

/// The placed order.
#[derive(SimpleObject)]
pub struct PlaceOrderPayload {
    /// The order (also when this was a retry of an earlier request); null on a user error.
    pub order: Option<Order>,
    /// True when this answer is a replay: an earlier request with the same `idempotencyKey`
    /// placed the order, and this one placed nothing.
    pub replayed: bool,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Which order.
#[derive(InputObject)]
pub struct OrderInput {
    /// The order.
    pub order_id: ID,
}

/// Which order, and why.
#[derive(InputObject)]
pub struct OrderReasonInput {
    /// The order.
    pub order_id: ID,
    /// Why (required to reject; optional to cancel), at most 200 characters.
    pub reason: Option<String>,
}

/// The order after a change.
#[derive(SimpleObject)]
pub struct OrderPayload {
    /// The order as changed; null on a user error.
    pub order: Option<Order>,
    /// Problems with the input or the order's state; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Where the courier is.
#[derive(InputObject)]
pub struct CourierLocationInput {
    /// The order being delivered.
    pub order_id: ID,
    /// The courier's position.
    pub location: GeoPointInput,
}

/// The delivery after a location update.
#[derive(SimpleObject)]
pub struct DeliveryPayload {
    /// The delivery; null on a user error.
    pub delivery: Option<Delivery>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// A review of a delivered order.
#[derive(InputObject)]
pub struct CreateReviewInput {
    /// The order.
    pub order_id: ID,
    /// Stars, 1 to 5.
    pub rating: i32,
    /// What the customer thought, at most 2000 characters.
    #[graphql(default)]
    pub body: String,
}

/// The written review.
#[derive(SimpleObject)]
pub struct CreateReviewPayload {
    /// The review; null on a user error.
    pub review: Option<Review>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

fn order_payload(
    ctx: &Context<'_>,
    result: Result<entities::order::Model, InputError>,
) -> Result<OrderPayload> {
    Ok(match result {
        Ok(order) => OrderPayload {
            order: readable(ctx, order)?,
            user_errors: Vec::new(),
        },
        Err(error) => OrderPayload {
            order: None,
            user_errors: vec![error.into()],
        },
    })
}

/// The changed order, for credentials that may read orders: `orders:write` alone may act,
/// not read.
fn readable(ctx: &Context<'_>, order: entities::order::Model) -> Result<Option<Order>> {
    Ok(viewer(ctx)?
        .allows(Scope::OrdersRead)
        .then(|| Order::from(order)))
}

/// Says that an order changed, once its transaction has committed (its event is in the log
/// already; this makes every replica read it now).
async fn announce(ctx: &Context<'_>) -> Result<()> {
    ctx.data::<EventBus>()?.order_changed().await;
    Ok(())
}

async fn run_move(
    ctx: &Context<'_>,
    order_id: &ID,
    mv: Move,
    reason: Option<String>,
) -> Result<OrderPayload> {
    let order_id = GlobalId::decode_as(order_id, NodeKind::Order)?;
    let db = ctx.data::<DatabaseConnection>()?;
    let result = service::move_order(db, viewer(ctx)?, order_id, mv, reason, Utc::now()).await?;
    if result.is_ok() {
        announce(ctx).await?;
    }
    order_payload(ctx, result)
}

/// The order lifecycle.
#[derive(Default)]
pub struct OrderMutation;

#[Object]
impl OrderMutation {
    /// Places an order as the viewer (customers). Idempotent per `idempotencyKey`.
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn place_order(
        &self,
        ctx: &Context<'_>,
        input: PlaceOrderInput,
    ) -> Result<PlaceOrderPayload> {
        let viewer = viewer(ctx)?;
        viewer.require_role(Role::Customer)?;
        let customer_id = viewer.require_user()?.id;
        let destination = match Destination::new(
            input.address_id.as_ref(),
            input.delivery_address,
            input.delivery_location,
        )? {
            Ok(destination) => destination,
            Err(error) => {
                return Ok(PlaceOrderPayload {
                    order: None,
                    replayed: false,
                    user_errors: vec![error.into()],
                });
            }
        };
        let request = PlaceOrder {
            restaurant_id: GlobalId::decode_as(&input.restaurant_id, NodeKind::Restaurant)?,
            lines: decode_lines(&input.lines)?,
            address_id: destination.address_id,
            delivery_address: destination.address,
            latitude: destination.location.map_or(0.0, |l| l.latitude),
            longitude: destination.location.map_or(0.0, |l| l.longitude),
            delivery_notes: None,
            idempotency_key: input.idempotency_key,
        };
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(
            match service::place(db, customer_id, &request, Utc::now()).await? {
                Ok(placed) => {
                    if placed.created {
                        announce(ctx).await?;
                    }
                    PlaceOrderPayload {
                        replayed: !placed.created,
                        order: readable(ctx, placed.order)?,
                        user_errors: Vec::new(),
                    }
                }
                Err(error) => PlaceOrderPayload {
                    order: None,
                    replayed: false,
                    user_errors: vec![error.into()],
                },
            },
        )
    }

    /// The restaurant takes the order (staff).
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn accept_order(&self, ctx: &Context<'_>, input: OrderInput) -> Result<OrderPayload> {
        run_move(ctx, &input.order_id, Move::Accept, None).await
    }

    /// The restaurant declines the order, saying why (staff).
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn reject_order(
        &self,
        ctx: &Context<'_>,
        input: OrderReasonInput,
    ) -> Result<OrderPayload> {
        run_move(ctx, &input.order_id, Move::Reject, input.reason).await
    }

    /// Cooking starts (staff).
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn start_preparing_order(
        &self,
        ctx: &Context<'_>,
        input: OrderInput,
    ) -> Result<OrderPayload> {
        run_move(ctx, &input.order_id, Move::StartPreparing, None).await
    }

    /// The food waits for a courier (staff).
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn mark_order_ready(&self, ctx: &Context<'_>, input: OrderInput) -> Result<OrderPayload> {
        run_move(ctx, &input.order_id, Move::MarkReady, None).await
    }

    /// Calls the order off: the customer while it is PLACED, staff or admins until pickup.
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn cancel_order(
        &self,
        ctx: &Context<'_>,
        input: OrderReasonInput,
    ) -> Result<OrderPayload> {
        run_move(ctx, &input.order_id, Move::Cancel, input.reason).await
    }

    /// A courier takes a ready order; of two couriers racing, one wins.
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn claim_delivery(&self, ctx: &Context<'_>, input: OrderInput) -> Result<OrderPayload> {
        let order_id = GlobalId::decode_as(&input.order_id, NodeKind::Order)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::claim_delivery(db, viewer(ctx)?, order_id, Utc::now()).await?;
        if result.is_ok() {
            announce(ctx).await?;
        }
        order_payload(ctx, result.map(|(order, _)| order))
    }

    /// The courier has the food (the courier who claimed it).
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn confirm_pickup(&self, ctx: &Context<'_>, input: OrderInput) -> Result<OrderPayload> {
        run_move(ctx, &input.order_id, Move::ConfirmPickup, None).await
    }

    /// The customer has the food (the courier who claimed it).
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn confirm_delivery(&self, ctx: &Context<'_>, input: OrderInput) -> Result<OrderPayload> {
        run_move(ctx, &input.order_id, Move::ConfirmDelivery, None).await
    }

    /// The courier reports where they are (the courier who claimed it).
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn update_courier_location(
        &self,
        ctx: &Context<'_>,
        input: CourierLocationInput,
    ) -> Result<DeliveryPayload> {
        let order_id = GlobalId::decode_as(&input.order_id, NodeKind::Order)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::update_location(
            db,
            viewer(ctx)?,
            order_id,
            input.location.latitude,
            input.location.longitude,
            Utc::now(),
        )
        .await?;
        Ok(match result {
            Ok(delivery) => {
                ctx.data::<EventBus>()?.courier_moved(order_id).await;
                DeliveryPayload {
                    delivery: Some(Delivery(Arc::new(delivery))),
                    user_errors: Vec::new(),
                }
            }
            Err(error) => DeliveryPayload {
                delivery: None,
                user_errors: vec![error.into()],
            },
        })
    }

    /// The customer reviews a delivered order, once.
    #[graphql(guard = "ScopeGuard(Scope::OrdersWrite)")]
    async fn create_review(
        &self,
        ctx: &Context<'_>,
        input: CreateReviewInput,
    ) -> Result<CreateReviewPayload> {
        let order_id = GlobalId::decode_as(&input.order_id, NodeKind::Order)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::create_review(
            db,
            viewer(ctx)?,
            order_id,
            input.rating,
            &input.body,
            Utc::now(),
        )
        .await?;
        if result.is_ok() {
            // It queued its `review.created` deliveries.
            crate::webhooks::wake();
        }
        Ok(match result {
            Ok(review) => CreateReviewPayload {
                review: Some(Review(Arc::new(review))),
                user_errors: Vec::new(),
            },
            Err(error) => CreateReviewPayload {
                review: None,
                user_errors: vec![error.into()],
            },
        })
    }
}
