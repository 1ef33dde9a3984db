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
        relay::{GlobalId, NodeKind, PageArgs},
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
    /// Where to deliver, on the map.
    pub delivery_location: GeoPointInput,
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
    /// Its price now.
    pub unit_price: Money,
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
                .map(|(item, line)| QuoteLine {
                    menu_item: MenuItem(std::sync::Arc::new(item.into())),
                    name: item.name.clone(),
                    quantity: line.quantity,
                    unit_price: Money::from_minor(item.price_amount, currency),
                    line_total: Money::from_minor(
                        item.price_amount * i64::from(line.quantity),
                        currency,
                    ),
                    note: line.note.clone(),
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
        let cart = orders::Cart {
            restaurant_id: GlobalId::decode_as(&input.restaurant_id, NodeKind::Restaurant)?,
            lines: &lines,
            latitude: input.delivery_location.latitude,
            longitude: input.delivery_location.longitude,
        };
        let db = ctx.data::<DatabaseConnection>()?;
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
    /// `near` (oldest first without it).
    #[graphql(
        complexity = "crate::graphql::relay::connection_cost(Some(first), None, 20, child_complexity)"
    )]
    async fn available_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many, at most 100.", default = 20)] first: i32,
        #[graphql(desc = "The courier's position.")] near: Option<GeoPointInput>,
    ) -> Result<Vec<Order>> {
        let viewer = viewer(ctx)?;
        viewer.require_role(Role::Courier)?;
        viewer.require_scope(Scope::OrdersRead)?;
        let args = PageArgs::new(Some(first), None, None, None, 20)?;
        let near = near.map(GeoPointInput::to_point).transpose()?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(orders::available_for_couriers(db, near, args.limit)
            .await?
            .into_iter()
            .map(Order::from)
            .collect())
    }
}
