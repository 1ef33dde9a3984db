//! Live order updates: for customers, staff and couriers.

use std::sync::{
    Arc,
    atomic::{AtomicI32, Ordering},
};

use async_graphql::{Context, ErrorExtensions, ID, Result, Subscription};
use futures_util::{Stream, StreamExt, stream};
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

/// The last item of a stream whose viewer lost access: `FORBIDDEN`, then nothing more.
fn gone() -> async_graphql::Error {
    async_graphql::Error::new(GONE).extend_with(|_, e| e.set("code", crate::error::code::FORBIDDEN))
}

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
    visible_order(db, viewer, id).await.map_err(|_| gone())
}

/// A request slot while a subscription starts (WebSocket connections carry `StartSlots`; the
/// guard is dropped when the resolver returns its stream).
async fn start_turn(ctx: &Context<'_>) -> Option<crate::graphql::limits::Admitted> {
    match ctx.data_opt::<crate::ws::StartSlots>() {
        Some(slots) => slots.turn().await,
        None => None,
    }
}

/// Ends a restaurant's feed for a viewer who is no longer its staff (the membership read
/// afresh: the viewer's own list is from when the socket opened).
async fn still_staff(db: &DatabaseConnection, viewer: &Viewer, restaurant_id: i64) -> Result<()> {
    if viewer.is_admin() {
        return Ok(());
    }
    let user = viewer.user().map(|user| user.id).unwrap_or_default();
    let member = entities::restaurant_staff::Entity::find_by_id((restaurant_id, user))
        .one(db)
        .await
        .map_err(AppError::from)?;
    if member.is_some() {
        Ok(())
    } else {
        Err(gone())
    }
}

/// Yields `load()` each time `matches` accepts an event, until the bus closes or `load` fails:
/// then the error is the last item, and the stream ends (a subscriber that falls behind skips
/// ahead; the next match reloads the state).
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
    stream::unfold(Some((receiver, handlers)), |state| async move {
        // `None` once an error was sent: nothing more follows it.
        let (mut receiver, handlers) = state?;
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
                Ok(Some(item)) => return Some((Ok(item), Some((receiver, handlers)))),
                Ok(None) => {}
                Err(error) => return Some((Err(error), None)),
            }
        }
    })
}

/// Live updates.
#[derive(Default)]
pub struct OrderSubscription;

#[Subscription]
impl OrderSubscription {
    /// The order each time it changes (status, delivery), newer `version` each time. For its
    /// customer, the restaurant's staff, its courier and admins; when the viewer may no longer
    /// see it (a courier whose order was cancelled), the stream ends with an error.
    async fn order_updated(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order to follow.")] order_id: ID,
        #[graphql(
            desc = "Send the order as it is now first, so a client that (re)connects knows where it stands before the next change.",
            default = false
        )]
        current: bool,
    ) -> Result<impl Stream<Item = Result<Order>> + use<>> {
        let _turn = start_turn(ctx).await;
        let id = GlobalId::decode_as(&order_id, NodeKind::Order)?;
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let viewer = viewer(ctx)?.clone();
        // Listening before reading, so no change between the read and the first event is lost.
        let receiver = ctx.data::<EventBus>()?.subscribe();
        let now = visible_order(&db, &viewer, id).await?;
        // Each committed state is sent once: events of changes already read are skipped.
        let sent = Arc::new(AtomicI32::new(now.version));
        let first = current.then(|| Ok(Order(Arc::new(now))));
        Ok(stream::iter(first).chain(follow(
            receiver,
            move |event| matches!(event, Event::OrderChanged { order_id, .. } if *order_id == id),
            move |_| {
                let (db, viewer, sent) = (db.clone(), viewer.clone(), sent.clone());
                async move {
                    let order = still_visible(&db, &viewer, id).await?;
                    let newer = sent.fetch_max(order.version, Ordering::Relaxed) < order.version;
                    Ok(newer.then(|| Order(Arc::new(order))))
                }
            },
        )))
    }

    /// Every new order and every change of an order of the restaurant. For its staff and
    /// admins; staff removed from the restaurant get an error, and the stream ends.
    async fn restaurant_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The restaurant.")] restaurant_id: ID,
    ) -> Result<impl Stream<Item = Result<Order>> + use<>> {
        let _turn = start_turn(ctx).await;
        let restaurant = GlobalId::decode_as(&restaurant_id, NodeKind::Restaurant)?;
        let viewer = viewer(ctx)?.clone();
        require_restaurant_orders(&viewer, restaurant)?;
        let db = ctx.data::<DatabaseConnection>()?.clone();
        Ok(follow(
            ctx.data::<EventBus>()?.subscribe(),
            move |event| matches!(event, Event::OrderChanged { restaurant_id, .. } if *restaurant_id == restaurant),
            move |event| {
                let (db, viewer) = (db.clone(), viewer.clone());
                async move {
                    let Event::OrderChanged { order_id, .. } = event else {
                        return Ok(None);
                    };
                    still_staff(&db, &viewer, restaurant).await?;
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
        let _turn = start_turn(ctx).await;
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
