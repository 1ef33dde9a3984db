//! Live order updates: for customers, staff and couriers.

use std::sync::{
    Arc,
    atomic::{AtomicI32, Ordering},
};

use async_graphql::{Context, ID, Result, Subscription};
use futures_util::{Stream, stream};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::types::{Delivery, Order, require_restaurant_orders};
use crate::{
    auth::{Scope, Viewer, guards::viewer},
    error::AppError,
    events::{Event, EventBus},
    graphql::relay::{GlobalId, NodeKind},
    services::orders::can_see,
};

/// Ends a subscription whose viewer may no longer see what it follows.
const GONE: &str = "the subscription ended: access to it is gone";

/// The order `id` if `viewer` may see it; `NOT_FOUND` otherwise, so strangers learn nothing.
async fn visible_order(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
) -> Result<entities::order::Model, AppError> {
    viewer.require_scope(Scope::OrdersRead)?;
    let order = entities::order::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("order".into()))?;
    let delivery = entities::delivery::Entity::find()
        .filter(entities::delivery::Column::OrderId.eq(id))
        .one(db)
        .await?;
    if can_see(viewer, &order, delivery.as_ref()) {
        Ok(order)
    } else {
        Err(AppError::NotFound("order".into()))
    }
}

/// The order `id` read afresh, or the end of the subscription when `viewer` may no longer see
/// it (e.g. the courier of a cancelled delivery).
async fn still_visible(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
) -> Result<entities::order::Model> {
    visible_order(db, viewer, id)
        .await
        .map_err(|_| async_graphql::Error::new(GONE))
}

/// Yields `load()` each time `matches` accepts an event, until the bus closes or `load` ends
/// the stream with `Err(Gone)` (a subscriber that falls behind skips ahead; the next match
/// reloads the state).
fn follow<T, M, F, Fut>(
    receiver: Receiver<Event>,
    matches: M,
    load: F,
) -> impl Stream<Item = Result<T>> + use<T, M, F, Fut>
where
    T: Send + 'static,
    M: Fn(&Event) -> bool + Send + Sync + 'static,
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<T>>> + Send,
{
    let handlers = Arc::new((matches, load));
    stream::unfold(
        (receiver, handlers),
        |(mut receiver, handlers)| async move {
            loop {
                let event = match receiver.recv().await {
                    Ok(event) if (handlers.0)(&event) => event,
                    Ok(_) => continue,
                    // This subscriber was too slow; skip ahead (the next match reloads the state).
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "a subscriber fell behind");
                        continue;
                    }
                    Err(RecvError::Closed) => return None,
                };
                match (handlers.1)(event).await {
                    Ok(Some(item)) => return Some((Ok(item), (receiver, handlers))),
                    Ok(None) => {}
                    Err(error) => return Some((Err(error), (receiver, handlers))),
                }
            }
        },
    )
}

/// Live updates.
#[derive(Default)]
pub struct OrderSubscription;

#[Subscription]
impl OrderSubscription {
    /// The order each time it changes (status, delivery). For its customer, the restaurant's
    /// staff, its courier and admins.
    async fn order_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order to follow.")] order_id: ID,
    ) -> Result<impl Stream<Item = Result<Order>> + use<>> {
        let id = GlobalId::decode_as(&order_id, NodeKind::Order)?;
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let current = visible_order(&db, viewer(ctx)?, id).await?;
        // Each committed state is sent once: events of changes already read are skipped.
        let sent = Arc::new(AtomicI32::new(current.version));
        Ok(follow(
            ctx.data::<EventBus>()?.subscribe(),
            move |event| matches!(event, Event::OrderChanged { order_id, .. } if *order_id == id),
            move |_| {
                let (db, sent) = (db.clone(), sent.clone());
                async move {
                    let order = entities::order::Entity::find_by_id(id)
                        .one(&db)
                        .await
                        .map_err(AppError::from)?;
                    Ok(order
                        .filter(|order| {
                            sent.fetch_max(order.version, Ordering::Relaxed) < order.version
                        })
                        .map(|order| Order(Arc::new(order))))
                }
            },
        ))
    }

    /// Every new order and every change of an order of the restaurant. For its staff and
    /// admins.
    async fn restaurant_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The restaurant.")] restaurant_id: ID,
    ) -> Result<impl Stream<Item = Result<Order>> + use<>> {
        let restaurant = GlobalId::decode_as(&restaurant_id, NodeKind::Restaurant)?;
        require_restaurant_orders(viewer(ctx)?, restaurant)?;
        let db = ctx.data::<DatabaseConnection>()?.clone();
        Ok(follow(
            ctx.data::<EventBus>()?.subscribe(),
            move |event| matches!(event, Event::OrderChanged { restaurant_id, .. } if *restaurant_id == restaurant),
            move |event| {
                let db = db.clone();
                async move {
                    let Event::OrderChanged { order_id, .. } = event else {
                        return Ok(None);
                    };
                    let order = entities::order::Entity::find_by_id(order_id)
                        .one(&db)
                        .await
                        .map_err(AppError::from)?;
                    Ok(order.map(|order| Order(Arc::new(order))))
                }
            },
        ))
    }

    /// The courier's delivery each time they report a position. For the order's customer, the
    /// restaurant's staff, the courier and admins.
    async fn courier_location(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order being delivered.")] order_id: ID,
    ) -> Result<impl Stream<Item = Result<Delivery>> + use<>> {
        let id = GlobalId::decode_as(&order_id, NodeKind::Order)?;
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let viewer = viewer(ctx)?.clone();
        let receiver = ctx.data::<EventBus>()?.subscribe();
        visible_order(&db, &viewer, id).await?;
        Ok(follow(
            receiver,
            move |event| matches!(event, Event::CourierMoved { order_id } if *order_id == id),
            move |_| {
                let (db, viewer) = (db.clone(), viewer.clone());
                async move {
                    still_visible(&db, &viewer, id).await?;
                    let delivery = entities::delivery::Entity::find()
                        .filter(entities::delivery::Column::OrderId.eq(id))
                        .one(&db)
                        .await
                        .map_err(AppError::from)?;
                    Ok(delivery.map(|delivery| Delivery(Arc::new(delivery))))
                }
            },
        ))
    }
}
