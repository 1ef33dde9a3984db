//! Live order updates: for customers, staff and couriers.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, ID, Result, Subscription};
use futures_util::{Stream, StreamExt, stream};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::types::{Delivery, Order, require_restaurant_orders};
use crate::{
    auth::{Scope, Viewer, guards::viewer},
    error::AppError,
    events::{AccessEnded, CourierMove, EventBus, Follower, OrderChange, Stamped},
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

/// A request slot while a subscription starts (WebSocket connections carry `StartSlots`; the
/// guard is dropped when the resolver returns its stream).
async fn start_turn(ctx: &Context<'_>) -> Option<crate::graphql::limits::Admitted> {
    match ctx.data_opt::<crate::ws::StartSlots>() {
        Some(slots) => slots.turn().await,
        None => None,
    }
}

/// What a subscription does with one change it hears of.
enum Step<T> {
    /// Not for this subscription (another order, or a state already sent).
    Skip,
    /// Send it; more may follow.
    Send(T),
    /// Send it; it is the last (the order reached a final status).
    Last(T),
    /// End with this error (access is gone).
    End(async_graphql::Error),
}

/// What a subscriber does when it fell more than the buffer behind.
#[derive(Clone, Copy)]
enum OnLag {
    /// End with an error: every change must arrive, so a gap is said, not skipped.
    End,
    /// Skip to the newest: each item replaces the last (positions).
    Skip,
}

/// The subscriber fell too far behind to be given every change.
fn lagged() -> async_graphql::Error {
    async_graphql::Error::new(format!(
        "the subscription ended: this subscriber fell more than {} changes behind; subscribe again (with `current: true` to start from the order as it is)",
        crate::events::BUFFER
    ))
    .extend_with(|_, e| e.set("code", crate::error::code::SERVICE_UNAVAILABLE))
}

/// The stream's end when the viewer's access changed under it: its API token revoked
/// (`UNAUTHENTICATED`), or more access changes than are kept came at once.
fn access_ended(why: AccessEnded) -> async_graphql::Error {
    match why {
        AccessEnded::Revoked => async_graphql::Error::new(
            "the subscription ended: the API token it was started with was revoked",
        )
        .extend_with(|_, e| e.set("code", crate::error::code::UNAUTHENTICATED)),
        AccessEnded::Behind => async_graphql::Error::new(
            "the subscription ended: more changes of access came than this server keeps while it waited, so it cannot tell whether it may go on; subscribe again",
        )
        .extend_with(|_, e| e.set("code", crate::error::code::SERVICE_UNAVAILABLE)),
    }
}

/// `viewer` followed from now on: already ended if the access changes read since it signed in
/// end it.
fn follower(bus: &EventBus, viewer: &Viewer) -> Result<Follower> {
    bus.follower(viewer.clone()).map_err(access_ended)
}

/// Yields what `step` makes of each change from `receiver`, in order, until it ends the
/// stream or the bus closes. An error is the last item. Before each change the viewer takes
/// the access changes read since (`step` sees it as it is now): a revoked token ends the
/// stream, a role taken away counts from that change. Changes handed out before the
/// subscription began (before an access look that counted it) are not for it.
fn follow<C, T, S>(
    receiver: Receiver<Arc<C>>,
    follower: Follower,
    on_lag: OnLag,
    step: S,
) -> impl Stream<Item = Result<T>> + use<C, T, S>
where
    C: Stamped + Send + Sync + 'static,
    T: Send + 'static,
    S: FnMut(&C, &Viewer) -> Step<T> + Send + 'static,
{
    stream::unfold(Some((receiver, follower, step)), move |state| async move {
        // `None` once the stream said its last.
        let (mut receiver, mut follower, mut step) = state?;
        loop {
            let change = match receiver.recv().await {
                Ok(change) => change,
                Err(RecvError::Lagged(skipped)) => match on_lag {
                    OnLag::Skip => continue,
                    OnLag::End => {
                        tracing::warn!(skipped, "a subscriber fell behind; its stream ends");
                        return Some((Err(lagged()), None));
                    }
                },
                Err(RecvError::Closed) => return None,
            };
            if !follower.counted(&*change) {
                continue;
            }
            if let Err(why) = follower.refresh() {
                return Some((Err(access_ended(why)), None));
            }
            match step(&change, follower.viewer()) {
                Step::Skip => {}
                Step::Send(item) => return Some((Ok(item), Some((receiver, follower, step)))),
                Step::Last(item) => return Some((Ok(item), None)),
                Step::End(error) => return Some((Err(error), None)),
            }
        }
    })
}

/// Live updates.
#[derive(Default)]
pub struct OrderSubscription;

#[Subscription]
impl OrderSubscription {
    /// The order each time it changes: every committed change once, in `version` order, with
    /// `lastEvent` saying what the change was (a status move or a courier's claim), so a
    /// client can rebuild the whole sequence. For its customer, the restaurant's staff, its
    /// courier and admins. The stream completes after the order reaches a final status
    /// (`DELIVERED`, `REJECTED`, `CANCELLED`; at once if it already has). It ends with
    /// `FORBIDDEN` when the viewer may no longer see the order (a role or the delivery taken
    /// away), with `UNAUTHENTICATED` when the API token it was started with is revoked, and
    /// with `SERVICE_UNAVAILABLE` if this subscriber fell so far behind that it could not be
    /// given every change: subscribe again with `current: true`. Each ends it before the next
    /// change would be sent.
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
        let bus = ctx.data::<EventBus>()?;
        // Listening before reading, so no change between the read and the first event is lost.
        let (receiver, follower) = (bus.changes(), follower(bus, &viewer)?);
        let now = visible_order(&db, &viewer, id).await?;
        let finished = now.status.is_final();
        // Each version is sent once, in order: changes already read are skipped.
        let mut sent = now.version;
        let first = current.then(|| Ok(Order::from(now)));
        let step = move |change: &OrderChange, viewer: &Viewer| {
            if change.order.id != id || change.event.version <= sent {
                return Step::Skip;
            }
            if !change.visible_to(viewer) {
                return Step::End(gone());
            }
            sent = change.event.version;
            let order = Order::of_change(change);
            if change.order.status.is_final() {
                Step::Last(order)
            } else {
                Step::Send(order)
            }
        };
        let changes = follow(receiver, follower, OnLag::End, step);
        // An order already final changes no more: the stream ends after the current state.
        let changes = (!finished).then_some(changes);
        Ok(stream::iter(first).chain(stream::iter(changes).flatten()))
    }

    /// Every new order and every change of an order of the restaurant, each committed change
    /// once and in order (the order as that change left it; `lastEvent` says what changed).
    /// For its staff and admins; staff removed from the restaurant (or an admin no longer one)
    /// get `FORBIDDEN` instead of the next change, and the stream ends; so does one whose API
    /// token is revoked, with `UNAUTHENTICATED`. A subscriber too far behind to be given every
    /// change gets `SERVICE_UNAVAILABLE`, and the stream ends.
    async fn restaurant_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The restaurant.")] restaurant_id: ID,
    ) -> Result<impl Stream<Item = Result<Order>> + use<>> {
        let _turn = start_turn(ctx).await;
        let restaurant = GlobalId::decode_as(&restaurant_id, NodeKind::Restaurant)?;
        let viewer = viewer(ctx)?.clone();
        require_restaurant_orders(&viewer, restaurant)?;
        let user = viewer.user().map(|user| user.id);
        let bus = ctx.data::<EventBus>()?;
        let follower = follower(bus, &viewer)?;
        Ok(follow(
            bus.changes(),
            follower,
            OnLag::End,
            move |change: &OrderChange, viewer: &Viewer| {
                if change.order.restaurant_id != restaurant {
                    return Step::Skip;
                }
                // The staff as read with this change: someone removed since hears no more.
                if !viewer.is_admin() && !user.is_some_and(|user| change.staff.contains(&user)) {
                    return Step::End(gone());
                }
                Step::Send(Order::of_change(change))
            },
        ))
    }

    /// The courier's delivery each time they report a position; a subscriber that falls
    /// behind skips to the newest position (each replaces the last). For the order's customer,
    /// the restaurant's staff, the courier and admins; ends with `FORBIDDEN` when the viewer
    /// may no longer see the order, with `UNAUTHENTICATED` when the API token it was started
    /// with is revoked, and with `SERVICE_UNAVAILABLE` when it cannot tell whether either
    /// happened (subscribe again).
    async fn courier_location(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The order being delivered.")] order_id: ID,
    ) -> Result<impl Stream<Item = Result<Delivery>> + use<>> {
        let _turn = start_turn(ctx).await;
        let id = GlobalId::decode_as(&order_id, NodeKind::Order)?;
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let viewer = viewer(ctx)?.clone();
        let bus = ctx.data::<EventBus>()?;
        let (receiver, follower) = (bus.moves(), follower(bus, &viewer)?);
        visible_order(&db, &viewer, id).await?;
        // Positions only move forward: an older one arriving late is not sent.
        let mut latest = None;
        let step = move |moved: &CourierMove, viewer: &Viewer| {
            if moved.delivery.order_id != id {
                return Step::Skip;
            }
            if !moved.visible_to(viewer) {
                return Step::End(gone());
            }
            let at = moved.delivery.location_updated_at;
            if at.is_none() || at <= latest {
                return Step::Skip;
            }
            latest = at;
            Step::Send(Delivery(moved.delivery.clone()))
        };
        Ok(follow(receiver, follower, OnLag::Skip, step))
    }
}
