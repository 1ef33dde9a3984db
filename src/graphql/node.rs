//! The Relay `Node` interface with `node(id)` and `nodes(ids)`.

use std::sync::Arc;

use async_graphql::{Context, ID, Interface, Object, Result};

use super::{
    integrations::{
        types::ApiToken,
        webhooks::{WebhookDelivery, WebhookEndpoint, load_delivery, load_endpoint},
    },
    loaders::Loaders,
    menu::types::{MenuCategory, MenuItem},
    orders::types::{Delivery, Order, visible},
    relay::{GlobalId, MAX_PAGE_SIZE, NodeKind},
    restaurants::types::Restaurant,
    reviews::types::Review,
    users::{
        addresses::{Address, load_address},
        types::User,
    },
};
use crate::{auth::guards::viewer, error::AppError};

/// An object with a global ID that `node(id)` can fetch again.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "Global ID of the object."))]
pub enum Node {
    Restaurant(Restaurant),
    MenuCategory(MenuCategory),
    MenuItem(MenuItem),
    Review(Review),
    User(User),
    ApiToken(ApiToken),
    Order(Order),
    Delivery(Delivery),
    WebhookEndpoint(WebhookEndpoint),
    WebhookDelivery(WebhookDelivery),
    Address(Address),
}

/// Loads the object a global ID names; `None` when it does not exist.
async fn load_node(ctx: &Context<'_>, id: GlobalId) -> Result<Option<Node>> {
    let loaders = ctx.data::<Loaders>()?;
    Ok(match id.kind {
        NodeKind::Restaurant => loaders
            .restaurants
            .load_one(id.id)
            .await?
            .map(|m| Node::Restaurant(Restaurant::from(m))),
        NodeKind::MenuCategory => loaders
            .menu_categories
            .load_one(id.id)
            .await?
            .filter(|category| category.deleted_at.is_none())
            .map(|m| Node::MenuCategory(MenuCategory(m))),
        NodeKind::MenuItem => loaders
            .menu_items
            .load_one(id.id)
            .await?
            .filter(|item| item.deleted_at.is_none())
            .map(|m| Node::MenuItem(MenuItem(Arc::new(m.as_ref().into())))),
        NodeKind::Review => loaders
            .reviews
            .load_one(id.id)
            .await?
            .map(|m| Node::Review(Review(m))),
        NodeKind::User => loaders
            .users
            .load_one(id.id)
            .await?
            .map(|m| Node::User(User(m))),
        // Private: only its owner and admins learn that it exists.
        NodeKind::ApiToken => {
            let viewer = viewer(ctx)?;
            loaders
                .api_tokens
                .load_one(id.id)
                .await?
                .filter(|token| viewer.may_read_private_of(token.user_id).is_ok())
                .map(|m| Node::ApiToken(ApiToken(m)))
        }
        // Private: checked on the node itself, so `node(id)` cannot leak what `order(id)` hides.
        NodeKind::Order => match loaders.orders.load_one(id.id).await? {
            Some(order) if visible(ctx, &order).await? => Some(Node::Order(Order::new(order))),
            _ => None,
        },
        // Private like its order: a delivery is seen by whoever may see the order.
        NodeKind::Delivery => match loaders.deliveries.load_one(id.id).await? {
            Some(delivery) => match loaders.orders.load_one(delivery.order_id).await? {
                Some(order) if visible(ctx, &order).await? => {
                    Some(Node::Delivery(Delivery(delivery)))
                }
                _ => None,
            },
            None => None,
        },
        // Private: their owner and admins only.
        NodeKind::WebhookEndpoint => load_endpoint(ctx, id.id).await?.map(Node::WebhookEndpoint),
        NodeKind::WebhookDelivery => load_delivery(ctx, id.id).await?.map(Node::WebhookDelivery),
        NodeKind::Address => load_address(ctx, id.id).await?.map(Node::Address),
        // Read through their item (`MenuItem.optionGroups`); their ids are for `placeOrder`
        // and `setMenuItemOptions`.
        NodeKind::MenuOptionGroup | NodeKind::MenuOption => None,
    })
}

/// Fetching any object by its global ID.
#[derive(Default)]
pub struct NodeQuery;

/// Fetching any object by its global ID.
#[Object]
impl NodeQuery {
    /// The object with this global ID, or null when it does not exist.
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global ID.")] id: ID,
    ) -> Result<Option<Node>> {
        load_node(ctx, GlobalId::decode(&id)?).await
    }

    /// The objects with these global IDs (at most 100), in the same order; null where one does
    /// not exist.
    #[graphql(complexity = "ids.len().max(1).saturating_mul(child_complexity).saturating_add(1)")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global IDs, at most 100.")] ids: Vec<ID>,
    ) -> Result<Vec<Option<Node>>> {
        if ids.len() > MAX_PAGE_SIZE as usize {
            return Err(AppError::bad_input(format!("at most {MAX_PAGE_SIZE} ids at once")).into());
        }
        let ids = ids
            .iter()
            .map(GlobalId::decode)
            .collect::<Result<Vec<_>, _>>()?;
        futures_util::future::try_join_all(ids.into_iter().map(|id| load_node(ctx, id))).await
    }
}
