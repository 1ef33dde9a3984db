//! `order(id)` and `availableDeliveries`.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use sea_orm::DatabaseConnection;

use super::types::{Order, visible};
use crate::{
    auth::{Role, Scope, guards::viewer},
    graphql::{
        common::{GeoPointInput, Money},
        loaders::Loaders,
        menu::types::MenuItem,
        payloads::UserError,
        relay::{GlobalId, NodeKind, Page, PageArgs, PageInfo, decode_cursor, encode_cursor},
    },
    services::orders,
};

/// What a cart would cost.
#[derive(async_graphql::InputObject)]
pub struct QuoteOrderInput {
    /// The restaurant.
    pub restaurant_id: ID,
    /// What to order, 1 to 50 lines, as `placeOrder` takes them.
    pub lines: Vec<super::mutation::OrderLineInput>,
    /// Where to deliver, on the map; or `addressId`.
    pub delivery_location: Option<GeoPointInput>,
    /// One of the viewer's saved addresses, instead of `deliveryLocation`.
    pub address_id: Option<ID>,
}

/// One priced line of a quote.
#[derive(SimpleObject)]
pub struct QuoteLine {
    /// The item, as on the menu now.
    pub menu_item: MenuItem,
    /// Its name now.
    pub name: String,
    /// How many.
    pub quantity: i32,
    /// The price of one now, with its options.
    pub unit_price: Money,
    /// The options chosen, in menu order, priced now.
    pub options: Vec<super::types::OrderLineOption>,
    /// `unitPrice` times `quantity`.
    pub line_total: Money,
    /// The note for the kitchen.
    pub note: Option<String>,
}

/// A cart priced as `placeOrder` would price it now.
#[derive(SimpleObject)]
pub struct OrderQuote {
    /// The lines in the order given.
    pub lines: Vec<QuoteLine>,
    /// Sum of the lines.
    pub subtotal: Money,
    /// The restaurant's delivery fee.
    pub delivery_fee: Money,
    /// What the order would cost: subtotal plus delivery fee.
    pub total: Money,
}

/// The quote, or why the order could not be placed.
#[derive(SimpleObject)]
pub struct QuoteOrderPayload {
    /// The priced cart; null on a user error.
    pub quote: Option<OrderQuote>,
    /// What `placeOrder` would refuse now (closed, sold out, not on the menu, outside the
    /// delivery area, bad quantities), with the same codes and fields; empty when it would be
    /// placed.
    pub user_errors: Vec<UserError>,
}

impl From<orders::Priced> for OrderQuote {
    fn from(priced: orders::Priced) -> Self {
        let currency = priced.restaurant.currency.as_str();
        Self {
            lines: priced
                .lines
                .iter()
                .map(|priced| QuoteLine {
                    menu_item: MenuItem(std::sync::Arc::new((&priced.item).into())),
                    name: priced.item.name.clone(),
                    quantity: priced.line.quantity,
                    unit_price: Money::from_minor(priced.unit_price, currency),
                    options: priced
                        .options
                        .iter()
                        .map(|option| super::types::OrderLineOption::new(option, currency))
                        .collect(),
                    line_total: Money::from_minor(
                        priced.unit_price * i64::from(priced.line.quantity),
                        currency,
                    ),
                    note: priced.line.note.clone(),
                })
                .collect(),
            subtotal: Money::from_minor(priced.subtotal, currency),
            delivery_fee: Money::from_minor(priced.delivery_fee, currency),
            total: Money::from_minor(priced.total, currency),
        }
    }
}

/// Reading orders.
#[derive(Default)]
pub struct OrderQuery;

#[Object]
impl OrderQuery {
    /// Prices a cart for the checkout screen with the very code `placeOrder` runs: the same
    /// lines, totals and user errors the order would get now. Nothing is written; anyone may
    /// ask (a cart comes before signing in).
    async fn quote_order(
        &self,
        ctx: &Context<'_>,
        input: QuoteOrderInput,
    ) -> Result<QuoteOrderPayload> {
        let lines = super::mutation::decode_lines(&input.lines)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let refused = |error: crate::services::InputError| QuoteOrderPayload {
            quote: None,
            user_errors: vec![error.into()],
        };
        if input.address_id.is_none() && input.delivery_location.is_none() {
            return Ok(refused(crate::services::InputError::new(
                "deliveryLocation",
                crate::services::ErrorCode::Invalid,
                "give the delivery location or a saved address (addressId)",
            )));
        }
        let destination = match super::mutation::Destination::new(
            input.address_id.as_ref(),
            input.delivery_location.map(|_| String::new()),
            input.delivery_location,
        )? {
            Ok(destination) => destination,
            Err(error) => return Ok(refused(error)),
        };
        let (latitude, longitude) = match (destination.address_id, destination.location) {
            (Some(id), _) => {
                let user = viewer(ctx)?.require_user()?.id;
                match crate::services::addresses::find_owned(db, user, id).await? {
                    Some(saved) => (saved.latitude, saved.longitude),
                    None => {
                        return Ok(refused(crate::services::InputError::new(
                            "addressId",
                            crate::services::ErrorCode::NotFound,
                            "no such address of yours",
                        )));
                    }
                }
            }
            (None, Some(location)) => (location.latitude, location.longitude),
            (None, None) => unreachable!("Destination::new gives an address id or a location"),
        };
        let cart = orders::Cart {
            restaurant_id: GlobalId::decode_as(&input.restaurant_id, NodeKind::Restaurant)?,
            lines: &lines,
            latitude,
            longitude,
        };
        Ok(match orders::quote(db, cart, chrono::Utc::now()).await? {
            Ok(priced) => QuoteOrderPayload {
                quote: Some(priced.into()),
                user_errors: Vec::new(),
            },
            Err(error) => QuoteOrderPayload {
                quote: None,
                user_errors: vec![error.into()],
            },
        })
    }

    /// One order; null when it does not exist or the viewer may not see it.
    async fn order(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global ID of the order.")] id: ID,
    ) -> Result<Option<Order>> {
        let id = GlobalId::decode_as(&id, NodeKind::Order)?;
        viewer(ctx)?.require_user()?;
        let Some(order) = ctx.data::<Loaders>()?.orders.load_one(id).await? else {
            return Ok(None);
        };
        Ok(visible(ctx, &order).await?.then_some(Order::new(order)))
    }

    /// For couriers: orders ready for pickup that nobody has claimed, nearest first from
    /// `near` (oldest first without it). Any courier may read these orders (pickup and
    /// drop-off included) until one of them claims it.
    #[graphql(
        complexity = "crate::graphql::relay::connection_cost(Some(first), None, 20, child_complexity)"
    )]
    async fn available_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many, at most 100.", default = 20)] first: i32,
        #[graphql(desc = "Cursor to start after; made with the same `near`.")] after: Option<
            String,
        >,
        #[graphql(desc = "The courier's position.")] near: Option<GeoPointInput>,
    ) -> Result<AvailableDeliveryConnection> {
        let viewer = viewer(ctx)?;
        viewer.require_role(Role::Courier)?;
        viewer.require_scope(Scope::OrdersRead)?;
        let args = PageArgs::new(Some(first), after, None, None, 20)?;
        let after = args
            .cursor
            .as_deref()
            .map(decode_cursor::<orders::AvailablePosition>)
            .transpose()?;
        let near = near.map(GeoPointInput::to_point).transpose()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let rows = orders::available_for_couriers(db, near, after, args.limit + 1).await?;
        Ok(AvailableDeliveryConnection {
            page: Page::from_rows(rows, &args),
            args,
            near,
        })
    }
}

/// A page of the orders couriers can claim.
pub struct AvailableDeliveryConnection {
    page: Page<orders::Available>,
    args: PageArgs,
    near: Option<crate::services::restaurants::Point>,
}

/// An order a courier can claim, with its cursor.
#[derive(SimpleObject)]
pub struct AvailableDeliveryEdge {
    /// Opaque position of the order; pass it as `after`.
    cursor: String,
    /// The order.
    node: Order,
    /// How far its restaurant (the pickup) is from `near`, in metres (great circle); null
    /// without `near`.
    pickup_distance_meters: Option<i32>,
}

/// A page of the orders couriers can claim.
#[Object]
impl AvailableDeliveryConnection {
    /// The orders of this page, nearest first.
    async fn edges(&self) -> Vec<AvailableDeliveryEdge> {
        self.page
            .items
            .iter()
            .map(|available| AvailableDeliveryEdge {
                cursor: encode_cursor(&available.position),
                node: Order::from(available.order.clone()),
                pickup_distance_meters: self.near.map(|near| {
                    let pickup = crate::services::restaurants::Point {
                        latitude: available.restaurant.latitude,
                        longitude: available.restaurant.longitude,
                    };
                    (near.distance_km(pickup) * 1000.0).round() as i32
                }),
            })
            .collect()
    }

    /// Where this page is in the list.
    async fn page_info(&self) -> PageInfo {
        self.page
            .page_info(&self.args, |available| encode_cursor(&available.position))
    }

    /// How many orders are waiting for a courier now.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(orders::count_available(db).await? as i64)
    }
}
