//! `menuUpdated`: staff dashboards and open menus follow a restaurant's menu live.

use async_graphql::{Context, ID, Object, Result, Subscription};
use futures_util::{Stream, stream};
use tokio::sync::broadcast::error::RecvError;

use super::types::{Menu, load_restaurant};
use crate::{
    events::EventBus,
    graphql::{
        loaders::Loaders,
        relay::{GlobalId, NodeKind},
        restaurants::types::Restaurant,
    },
};

/// A restaurant's menu changed: read it (or the restaurant) as it is now.
pub struct MenuUpdate {
    restaurant_id: i64,
}

/// A restaurant's menu changed: read it (or the restaurant) as it is now.
#[Object]
impl MenuUpdate {
    /// The restaurant whose menu changed.
    async fn restaurant(&self, ctx: &Context<'_>) -> Result<Restaurant> {
        load_restaurant(ctx, self.restaurant_id).await
    }

    /// The menu as it is now.
    async fn menu(&self) -> Menu {
        Menu {
            restaurant_id: self.restaurant_id,
        }
    }
}

/// Following menus.
#[derive(Default)]
pub struct MenuSubscription;

#[Subscription]
impl MenuSubscription {
    /// The restaurant's menu each time it changes (an item edited, sold out, added, removed,
    /// reordered, its options, an import), after the change committed, on whichever replica
    /// it was made. Menus are public: anyone may follow one. Changes in quick succession may
    /// arrive as one update; each update shows the menu as it is when it is read, so the last
    /// one is always current.
    async fn menu_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The restaurant.")] restaurant_id: ID,
    ) -> Result<impl Stream<Item = MenuUpdate> + use<>> {
        let id = GlobalId::decode_as(&restaurant_id, NodeKind::Restaurant)?;
        let receiver = ctx.data::<EventBus>()?.menus();
        ctx.data::<Loaders>()?
            .restaurants
            .load_one(id)
            .await?
            .ok_or_else(|| crate::error::AppError::NotFound("restaurant".into()))?;
        Ok(stream::unfold(receiver, move |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(change) if change.restaurant_id == id => break,
                    Ok(_) => {}
                    // Skipped changes may include this menu's: send it as it is now.
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => return None,
                }
            }
            Some((MenuUpdate { restaurant_id: id }, receiver))
        }))
    }
}
