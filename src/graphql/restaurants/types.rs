//! The `Restaurant` type and its connection.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, ID, Object, Result, SimpleObject};
use chrono::Utc;
use entities::{opening_hours, restaurant};
use sea_orm::DatabaseConnection;

use crate::{
    auth::guards::viewer,
    error::AppError,
    graphql::{
        common::{GeoPoint, GeoPointInput, Money, round_to_metres},
        loaders::Loaders,
        menu::types::Menu,
        orders::types::{OrderConnection, OrderOwner, OrderStatus, require_restaurant_orders},
        relay::{GlobalId, KeysetPosition, NodeKind, Page, PageArgs, PageInfo, encode_cursor},
        reviews::{loaders::ReviewCursor, types::ReviewConnection},
    },
    services::restaurants::{
        self as service, Card, CardRest, Listed, RestaurantFilter, SortKey, local_minute_of_week,
        offset_minutes, zone,
    },
};

/// A restaurant on the marketplace, with its menu and reviews: the columns of its card, and
/// its whole row when whatever found it read the row. Fields beyond the card read the rest
/// through the request's loader (one statement for all the restaurants of a page) when the
/// row was not read: a listing reads whole rows only when its query asks for such a field
/// (`RestaurantQuery::restaurants`), so this happens only when that guess misses.
#[derive(Clone)]
pub struct Restaurant {
    card: Arc<Card>,
    whole: Option<Arc<restaurant::Model>>,
}

impl From<Arc<restaurant::Model>> for Restaurant {
    fn from(whole: Arc<restaurant::Model>) -> Self {
        Self {
            card: Arc::new(Card::from(&*whole)),
            whole: Some(whole),
        }
    }
}

impl From<&Listed> for Restaurant {
    fn from(listed: &Listed) -> Self {
        Self {
            card: listed.card.clone(),
            whole: listed.whole.clone(),
        }
    }
}

/// A restaurant on the marketplace, with its menu and reviews.
#[Object]
impl Restaurant {
    /// Global ID of the restaurant.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::Restaurant, self.card.id)
    }

    /// Unique, URL-friendly name, e.g. `trattoria-roma`.
    async fn slug(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.rest(ctx).await?.slug.clone())
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.card.name
    }

    /// A few sentences about the restaurant.
    async fn description(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.whole(ctx).await?.description.clone())
    }

    /// Cuisines served, lower case, alphabetically, e.g. `["italian", "pizza"]`.
    async fn cuisines(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let cuisines = ctx
            .data::<Loaders>()?
            .cuisines
            .load_one(self.card.id)
            .await?;
        Ok(cuisines.map(|c| c.to_vec()).unwrap_or_default())
    }

    /// Street address.
    async fn address(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.whole(ctx).await?.address.clone())
    }

    /// Where the restaurant is.
    async fn location(&self, ctx: &Context<'_>) -> Result<GeoPoint> {
        let whole = self.whole(ctx).await?;
        Ok(GeoPoint {
            latitude: whole.latitude,
            longitude: whole.longitude,
        })
    }

    /// Distance in kilometres from `from` to the restaurant, as the crow flies.
    async fn distance_km(&self, ctx: &Context<'_>, from: GeoPointInput) -> Result<f64> {
        let whole = self.whole(ctx).await?;
        let restaurant = service::Point::new(whole.latitude, whole.longitude)?;
        Ok(round_to_metres(from.to_point()?.distance_km(restaurant)))
    }

    /// Whether the restaurant has ordering switched on, whatever its hours say.
    async fn accepts_orders(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(self.rest(ctx).await?.is_open)
    }

    /// Whether an order placed now would be taken: ordering is on, not paused, and it is
    /// within the hours.
    async fn open_now(&self, ctx: &Context<'_>) -> Result<bool> {
        let rest = self.rest(ctx).await?;
        if !rest.is_open || rest.paused_until.is_some_and(|until| until > Utc::now()) {
            return Ok(false);
        }
        let hours = ctx
            .data::<Loaders>()?
            .opening_hours
            .load_one(self.card.id)
            .await?
            .unwrap_or_default();
        let (zone, now) = (zone(&rest.time_zone), Utc::now());
        let minute = local_minute_of_week(zone, now);
        if !hours
            .iter()
            .any(|p| p.opens_at <= minute && minute < p.closes_at)
        {
            return Ok(false);
        }
        let today = now.with_timezone(&zone).date_naive();
        Ok(!self
            .load_closures(ctx)
            .await?
            .iter()
            .any(|c| c.starts_on <= today && today <= c.ends_on))
    }

    /// Days it is closed whatever its hours say (holidays), today's and later ones, soonest
    /// first; dates are in the restaurant's time zone.
    async fn closures(&self, ctx: &Context<'_>) -> Result<Vec<Closure>> {
        let today = Utc::now()
            .with_timezone(&zone(&self.rest(ctx).await?.time_zone))
            .date_naive();
        Ok(self
            .load_closures(ctx)
            .await?
            .iter()
            .filter(|c| c.ends_on >= today)
            .map(|c| Closure {
                starts_on: c.starts_on,
                ends_on: c.ends_on,
                reason: c.reason.clone(),
            })
            .collect())
    }

    /// Its logo, when it has one.
    async fn logo(&self, ctx: &Context<'_>) -> Result<Option<crate::graphql::media::Image>> {
        crate::graphql::media::load_image(ctx, crate::services::photos::Target::Logo(self.card.id))
            .await
    }

    /// The wide picture at the top of its page, when it has one.
    async fn cover(&self, ctx: &Context<'_>) -> Result<Option<crate::graphql::media::Image>> {
        crate::graphql::media::load_image(ctx, crate::services::photos::Target::Cover(self.card.id))
            .await
    }

    /// A phone number for customers and couriers, when the restaurant gives one.
    async fn phone(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.whole(ctx).await?.phone.clone())
    }

    /// Weekly opening hours in the restaurant's local time, Monday first.
    async fn opening_hours(&self, ctx: &Context<'_>) -> Result<Vec<OpeningPeriod>> {
        let hours = ctx
            .data::<Loaders>()?
            .opening_hours
            .load_one(self.card.id)
            .await?
            .unwrap_or_default();
        Ok(hours.iter().map(OpeningPeriod::from).collect())
    }

    /// The IANA time zone its opening hours are in, e.g. `Europe/Berlin`: render the hours
    /// in it (daylight saving time included) or convert them with it.
    async fn time_zone(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.rest(ctx).await?.time_zone.clone())
    }

    /// How far the restaurant's local time is ahead of UTC right now, in minutes (it changes
    /// with daylight saving time: use `timeZone` to compute other instants).
    async fn utc_offset_minutes(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(offset_minutes(
            zone(&self.rest(ctx).await?.time_zone),
            Utc::now(),
        ))
    }

    /// Fee added to every order for delivery.
    async fn delivery_fee(&self, ctx: &Context<'_>) -> Result<Money> {
        let rest = self.rest(ctx).await?;
        Ok(Money::from_minor(rest.delivery_fee, &rest.currency))
    }

    /// How far it delivers, in metres from the restaurant (straight line). Orders to places
    /// farther away are refused with `OUTSIDE_DELIVERY_AREA`; `filter.deliversTo` lists only
    /// the restaurants that deliver to a place.
    async fn delivery_radius_meters(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(self.whole(ctx).await?.delivery_radius_m)
    }

    /// The smallest subtotal it takes an order for (`BELOW_MINIMUM_ORDER` under it).
    async fn minimum_order(&self, ctx: &Context<'_>) -> Result<Money> {
        let whole = self.whole(ctx).await?;
        Ok(Money::from_minor(whole.minimum_order, &whole.currency))
    }

    /// Until when it does not take orders ("busy, back at 19:30"); null when it is not paused.
    async fn paused_until(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<crate::graphql::common::Timestamp>> {
        Ok(self
            .rest(ctx)
            .await?
            .paused_until
            .filter(|until| *until > Utc::now())
            .map(crate::graphql::common::Timestamp))
    }

    /// How long its kitchen usually takes for an order, in minutes (what
    /// `Order.estimatedReadyAt` counts with).
    async fn preparation_minutes(&self, ctx: &Context<'_>) -> Result<i32> {
        Ok(self.whole(ctx).await?.preparation_minutes)
    }

    /// Average rating and number of ratings.
    async fn rating(&self) -> Rating {
        Rating {
            count: self.card.rating_count,
            sum: self.card.rating_sum,
        }
    }

    /// The menu: categories in order, each with its items.
    async fn menu(&self) -> Menu {
        Menu {
            restaurant_id: self.card.id,
        }
    }

    /// The restaurant's orders, newest first. For its staff and admins; tokens need
    /// `orders:read`.
    #[graphql(
        complexity = "crate::graphql::relay::connection_cost(first, last, 20, child_complexity)"
    )]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only orders in this status.")] status: Option<OrderStatus>,
        #[graphql(desc = "Orders after this cursor, with `first`.")] after: Option<String>,
        #[graphql(desc = "Orders before this cursor, with `last`.")] before: Option<String>,
        #[graphql(desc = "How many from the newest, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "How many from the oldest, at most 100.")] last: Option<i32>,
    ) -> Result<OrderConnection> {
        require_restaurant_orders(viewer(ctx)?, self.card.id)?;
        let args = PageArgs::new(first, after, last, before, 20)?;
        OrderConnection::load(ctx, OrderOwner::Restaurant(self.card.id), status, args).await
    }

    /// Reviews, newest first.
    #[graphql(
        complexity = "crate::graphql::relay::connection_cost(first, last, 10, child_complexity)"
    )]
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Reviews after this cursor, with `first`.")] after: Option<String>,
        #[graphql(desc = "Reviews before this cursor, with `last`.")] before: Option<String>,
        #[graphql(desc = "How many reviews from the start, at most 100 (default 10).")]
        first: Option<i32>,
        #[graphql(desc = "How many reviews from the end, at most 100.")] last: Option<i32>,
    ) -> Result<ReviewConnection> {
        let args = PageArgs::new(first, after, last, before, 10)?;
        ReviewConnection::load(ctx, self.card.id, self.card.rating_count, args).await
    }
}

/// A restaurant's rating, built from its reviews.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Rating {
    /// Number of ratings.
    pub count: i64,
    #[graphql(skip)]
    pub sum: i64,
}

#[ComplexObject]
impl Rating {
    /// Mean of the ratings from 1 to 5, rounded to two decimals; null without ratings.
    async fn average(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.sum as f64 / self.count as f64 * 100.0).round() / 100.0)
    }
}

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// One opening period in a week, in the restaurant's local time.
#[derive(SimpleObject)]
pub struct OpeningPeriod {
    /// Day the period starts.
    pub day: Weekday,
    /// Opening time on that day, `HH:MM` (00:00 to 23:59).
    pub opens: String,
    /// Closing time, `HH:MM` (00:00 to 23:59), on the same day unless `closesNextDay`: a
    /// period open until midnight closes at `00:00` the next day, never at `24:00`.
    pub closes: String,
    /// Whether the period ends on the day after `day` (at or after midnight).
    pub closes_next_day: bool,
    /// How long the period lasts, in minutes.
    pub duration_minutes: i32,
}

impl From<&opening_hours::Model> for OpeningPeriod {
    fn from(period: &opening_hours::Model) -> Self {
        const DAYS: [Weekday; 7] = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ];
        let day = (period.opens_at / 1440).clamp(0, 6);
        let clock = |minute: i32| format!("{:02}:{:02}", minute / 60, minute % 60);
        Self {
            day: DAYS[day as usize],
            opens: clock(period.opens_at % 1440),
            closes: clock(period.closes_at % 1440),
            closes_next_day: period.closes_at >= (day + 1) * 1440,
            duration_minutes: period.closes_at - period.opens_at,
        }
    }
}

/// Where a restaurant is in a listing: its cursor before encoding.
pub type RestaurantPosition = KeysetPosition<SortKey>;

/// An edge of a connection: a node and its position, encoded as a cursor only when a query
/// asks for it (a nested page rarely does, and encoding is most of an edge's cost).
pub struct Edge<N, P> {
    pub node: N,
    pub position: P,
}

/// An edge of a connection: a node and its cursor.
#[Object(
    concrete(name = "RestaurantEdge", params(Restaurant, RestaurantPosition)),
    concrete(
        name = "ReviewEdge",
        params(crate::graphql::reviews::types::Review, ReviewCursor)
    ),
    concrete(name = "OrderEdge", params(crate::graphql::orders::types::Order, i64)),
    concrete(
        name = "DeliveryEdge",
        params(
            crate::graphql::orders::types::Delivery,
            crate::graphql::orders::loaders::DeliveryCursor
        )
    )
)]
impl<N, P> Edge<N, P>
where
    N: async_graphql::OutputType,
    P: serde::Serialize + Send + Sync,
{
    /// Opaque position of the node; pass it as `after` or `before`.
    async fn cursor(&self) -> String {
        encode_cursor(&self.position)
    }

    /// The item.
    async fn node(&self) -> &N {
        &self.node
    }
}

/// A page of restaurants.
pub struct RestaurantConnection {
    pub(crate) page: Page<Listed>,
    pub(crate) args: PageArgs,
    pub(crate) filter: RestaurantFilter,
}

/// A page of restaurants.
#[Object]
impl RestaurantConnection {
    /// The restaurants of this page with their cursors.
    async fn edges(&self) -> Vec<Edge<Restaurant, RestaurantPosition>> {
        self.page
            .items
            .iter()
            .map(|listed| Edge {
                node: Restaurant::from(listed),
                position: listed.cursor.clone(),
            })
            .collect()
    }

    /// The restaurants of this page.
    async fn nodes(&self) -> Vec<Restaurant> {
        self.page.items.iter().map(Restaurant::from).collect()
    }

    /// Where this page is in the list.
    async fn page_info(&self) -> PageInfo {
        self.page
            .page_info(&self.args, |listed| encode_cursor(&listed.cursor))
    }

    /// Number of restaurants matching the filter, over all pages.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let db = ctx.data::<DatabaseConnection>()?;
        let count = service::count(db, &self.filter, Utc::now()).await?;
        Ok(i64::try_from(count).unwrap_or(i64::MAX))
    }
}

/// What a user is at a restaurant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum StaffRole {
    /// Owns the restaurant.
    Owner,
    /// Works on its staff: sees and moves its orders.
    Staff,
}

/// A restaurant a user works at, and as what.
#[derive(SimpleObject)]
pub struct RestaurantMembership {
    /// The restaurant.
    pub restaurant: Restaurant,
    /// The user's role there.
    pub role: StaffRole,
}

impl Restaurant {
    /// Its whole row: the one it was found with, or else read through the request's loader.
    async fn whole(&self, ctx: &Context<'_>) -> Result<Arc<restaurant::Model>> {
        if let Some(whole) = &self.whole {
            return Ok(whole.clone());
        }
        ctx.data::<Loaders>()?
            .restaurants
            .load_one(self.card.id)
            .await?
            .ok_or_else(|| AppError::NotFound("restaurant".to_owned()).into())
    }

    /// The rest of its card: the one it was listed with, or else from its whole row (a list
    /// that read only the brief, were such a field ever asked of it).
    async fn rest(&self, ctx: &Context<'_>) -> Result<std::borrow::Cow<'_, CardRest>> {
        Ok(match &self.card.rest {
            Some(rest) => std::borrow::Cow::Borrowed(rest),
            None => std::borrow::Cow::Owned(CardRest::from(&*self.whole(ctx).await?)),
        })
    }

    /// Its dated closures that have not ended, through the request's loader.
    async fn load_closures(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Arc<[entities::restaurant_closure::Model]>> {
        Ok(ctx
            .data::<Loaders>()?
            .closures
            .load_one(self.card.id)
            .await?
            .unwrap_or_default())
    }
}

/// Days a restaurant is closed, both included, in its own time zone.
#[derive(async_graphql::SimpleObject)]
pub struct Closure {
    /// The first day closed.
    pub starts_on: chrono::NaiveDate,
    /// The last day closed.
    pub ends_on: chrono::NaiveDate,
    /// Why ("Christmas"); may be empty.
    pub reason: String,
}
