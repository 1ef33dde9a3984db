//! `order(id)` and `availableDeliveries`.

use async_graphql::{Context, ID, Object, Result};
use sea_orm::DatabaseConnection;

use super::types::{Order, visible};
use crate::{
    auth::{Role, Scope, guards::viewer},
    graphql::{
        common::GeoPointInput,
        loaders::Loaders,
        relay::{GlobalId, NodeKind, PageArgs},
    },
    services::orders,
};

/// Reading orders.
#[derive(Default)]
pub struct OrderQuery;

#[Object]
impl OrderQuery {
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
