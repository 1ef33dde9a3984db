//! Finding restaurants: filters, orderings and keyset pagination.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use entities::{FromRowByPosition, opening_hours, restaurant, restaurant_cuisine};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Value,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Order, Query, SimpleExpr},
};

use crate::{
    error::{AppError, AppResult},
    graphql::relay::{Direction, KeysetPosition, Page, PageArgs, decode_cursor},
};

/// Kilometres per degree of latitude (and of longitude at the equator).
pub const KM_PER_DEGREE: f64 = 111.195;
/// Minutes in a week; opening hours are minutes of the week.
pub const MINUTES_PER_WEEK: i32 = 7 * 24 * 60;
/// Longest free-text search accepted.
pub const MAX_SEARCH_CHARS: usize = 100;
/// Most cuisines in one filter.
pub const MAX_CUISINES: usize = 20;
/// Widest distance filter.
pub const MAX_RADIUS_KM: f64 = 500.0;

/// A point on earth in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub latitude: f64,
    pub longitude: f64,
}

impl Point {
    /// Checks the ranges of latitude and longitude.
    pub fn new(latitude: f64, longitude: f64) -> AppResult<Self> {
        if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
            return Err(AppError::bad_input(
                "latitude must be within -90..90 and longitude within -180..180",
            ));
        }
        Ok(Self {
            latitude,
            longitude,
        })
    }

    /// Great-circle distance in kilometres (haversine).
    pub fn distance_km(self, other: Self) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0;
        let (lat1, lat2) = (self.latitude.to_radians(), other.latitude.to_radians());
        let dlat = lat2 - lat1;
        let dlng = (other.longitude - self.longitude).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlng / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
    }
}

/// Which restaurants to list.
#[derive(Debug, Clone, Default)]
pub struct RestaurantFilter {
    /// Any of these cuisines (lower case); empty for all.
    pub cuisines: Vec<String>,
    /// Case-insensitive text that the name or the description contains.
    pub search: Option<String>,
    /// Only restaurants that take orders right now (`true`) or that do not (`false`).
    pub open_now: Option<bool>,
    /// The point distances are measured from.
    pub near: Option<Point>,
    /// Only restaurants within this many kilometres of `near`.
    pub within_km: Option<f64>,
    /// Only restaurants whose delivery area holds this point.
    pub delivers_to: Option<Point>,
}

impl RestaurantFilter {
    /// Checks the bounds of every part.
    pub fn validate(&self) -> AppResult<()> {
        if self.cuisines.len() > MAX_CUISINES {
            return Err(AppError::bad_input(format!(
                "at most {MAX_CUISINES} cuisines can be filtered on"
            )));
        }
        if self
            .search
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS)
        {
            return Err(AppError::bad_input(format!(
                "`search` is limited to {MAX_SEARCH_CHARS} characters"
            )));
        }
        if let Some(km) = self.within_km {
            if self.near.is_none() {
                return Err(AppError::bad_input("`withinKm` needs `near`"));
            }
            if !(km > 0.0 && km <= MAX_RADIUS_KM) {
                return Err(AppError::bad_input(format!(
                    "`withinKm` must be above 0 and at most {MAX_RADIUS_KM}"
                )));
            }
        }
        Ok(())
    }
}

/// What a restaurant list is sorted by; each ends with the id as a tie-breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Name,
    Rating,
    Distance,
}

/// A sort field and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordering {
    pub field: SortField,
    pub ascending: bool,
}

impl Ordering {
    /// Tag stored in cursors so a cursor cannot be replayed against another ordering.
    fn tag(self) -> String {
        let field = match self.field {
            SortField::Name => "name",
            SortField::Rating => "rating",
            SortField::Distance => "distance",
        };
        format!("{field}:{}", if self.ascending { "asc" } else { "desc" })
    }
}

/// The value a row is sorted by, kept in its cursor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum SortKey {
    Int(i64),
    Float(f64),
    Text(String),
}

impl SortKey {
    fn into_value(self) -> Value {
        match self {
            Self::Int(v) => v.into(),
            Self::Float(v) => v.into(),
            Self::Text(v) => v.into(),
        }
    }
}

/// What a list of restaurants shows of each one unless its query asks for more: the
/// columns of a restaurant's card in an app (name, rating, fee, whether it is open). A page
/// of fifty whole rows is 22 columns each, long descriptions and two timestamps parsed on
/// SQLite among them, and reading, copying and dropping them was most of a listing's cost.
/// A list whose query asks only the name and the rating (and what loaders find by id) reads
/// just those: the brief, without the [`CardRest`].
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    pub id: i64,
    pub name: String,
    pub rating_sum: i64,
    pub rating_count: i64,
    /// The rest of the card; `None` when the list read only the brief ([`Columns::Brief`]).
    pub rest: Option<CardRest>,
}

/// What a restaurant's card shows beyond its name and rating.
#[derive(Debug, Clone, PartialEq)]
pub struct CardRest {
    pub slug: String,
    /// ISO 4217 code of the menu's and the fee's currency.
    pub currency: String,
    /// Delivery fee in minor units of `currency`.
    pub delivery_fee: i64,
    pub is_open: bool,
    pub paused_until: Option<DateTime<Utc>>,
    pub time_zone: String,
}

impl Card {
    /// The brief's columns, in the order `read` reads them.
    pub const BRIEF_COLUMNS: [restaurant::Column; 4] = [
        restaurant::Column::Id,
        restaurant::Column::Name,
        restaurant::Column::RatingSum,
        restaurant::Column::RatingCount,
    ];

    /// The rest of the card's columns, read after the brief's, in this order.
    pub const REST_COLUMNS: [restaurant::Column; 6] = [
        restaurant::Column::Slug,
        restaurant::Column::Currency,
        restaurant::Column::DeliveryFee,
        restaurant::Column::IsOpen,
        restaurant::Column::PausedUntil,
        restaurant::Column::TimeZone,
    ];

    /// A card from a row starting with [`Card::BRIEF_COLUMNS`], followed by
    /// [`Card::REST_COLUMNS`] when `with_rest`.
    fn read(
        row: &sea_orm::QueryResult,
        check: bool,
        with_rest: bool,
    ) -> Result<Self, sea_orm::DbErr> {
        use entities::ReadColumn as _;
        let rest = if with_rest {
            Some(CardRest {
                slug: String::read(row, 4, check)?,
                currency: String::read(row, 5, check)?,
                delivery_fee: i64::read(row, 6, check)?,
                is_open: bool::read(row, 7, check)?,
                paused_until: Option::read(row, 8, check)?,
                time_zone: String::read(row, 9, check)?,
            })
        } else {
            None
        };
        Ok(Self {
            id: i64::read(row, 0, check)?,
            name: String::read(row, 1, check)?,
            rating_sum: i64::read(row, 2, check)?,
            rating_count: i64::read(row, 3, check)?,
            rest,
        })
    }
}

impl From<&restaurant::Model> for Card {
    fn from(restaurant: &restaurant::Model) -> Self {
        Self {
            id: restaurant.id,
            name: restaurant.name.clone(),
            rating_sum: restaurant.rating_sum,
            rating_count: restaurant.rating_count,
            rest: Some(CardRest::from(restaurant)),
        }
    }
}

impl From<&restaurant::Model> for CardRest {
    fn from(restaurant: &restaurant::Model) -> Self {
        Self {
            slug: restaurant.slug.clone(),
            currency: restaurant.currency.clone(),
            delivery_fee: restaurant.delivery_fee,
            is_open: restaurant.is_open,
            paused_until: restaurant.paused_until,
            time_zone: restaurant.time_zone.clone(),
        }
    }
}

/// The columns a listing reads of each restaurant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    /// Its [`Card`] without the [`CardRest`]: id, name and rating.
    Brief,
    /// Its [`Card`].
    Card,
    /// All of them.
    Whole,
}

/// A listed restaurant with its position in the ordering.
#[derive(Debug, Clone)]
pub struct Listed {
    pub card: Arc<Card>,
    /// The whole row, when the listing read it ([`Columns::Whole`]).
    pub whole: Option<Arc<restaurant::Model>>,
    pub cursor: KeysetPosition<SortKey>,
}

/// The minute of the week (Monday 00:00 = 0) at `now` in UTC.
pub fn minute_of_week(now: DateTime<Utc>) -> i32 {
    (now.weekday().num_days_from_monday() * 1440 + now.hour() * 60 + now.minute()) as i32
}

/// The time zone named `name`; UTC for a name the tz database does not know (the API never
/// stores one).
pub fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(Tz::UTC)
}

/// How far `zone` is ahead of UTC at `now`, in minutes (daylight saving time included).
pub fn offset_minutes(zone: Tz, now: DateTime<Utc>) -> i32 {
    use chrono::Offset;
    now.with_timezone(&zone).offset().fix().local_minus_utc() / 60
}

/// The minute of the week (Monday 00:00 = 0) on the clocks of `zone` at `now`: what opening
/// hours are compared with. The one place local time is computed (`openNow`, `placeOrder`,
/// and, through [`offset_minutes`], the SQL filter).
pub fn local_minute_of_week(zone: Tz, now: DateTime<Utc>) -> i32 {
    let local = now.with_timezone(&zone);
    (local.weekday().num_days_from_monday() * 1440 + local.hour() * 60 + local.minute()) as i32
}

/// The time zones restaurants use, as last read ([`ZoneClock`]): the SQL filter's `CASE`.
static ZONES_IN_USE: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Keeps the SQL open-now filter exact across daylight saving time: it learns which zones
/// restaurants use (so the filter computes each one's offset for the request's instant), and
/// keeps `restaurants.utc_offset_minutes` at each zone's current offset (what the filter falls
/// back to for a zone it has not learnt yet, e.g. set by another replica in the last minute).
pub struct ZoneClock;

impl ZoneClock {
    /// How often it looks.
    const EVERY: std::time::Duration = std::time::Duration::from_mins(1);

    /// Reads the zones once now, then every minute in the background.
    pub async fn start(db: DatabaseConnection) -> Result<(), sea_orm::DbErr> {
        Self::tick(&db, Utc::now()).await?;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Self::EVERY).await;
                if let Err(error) = Self::tick(&db, Utc::now()).await {
                    tracing::warn!(%error, "reading the restaurants' time zones failed");
                }
            }
        });
        Ok(())
    }

    async fn tick(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<(), sea_orm::DbErr> {
        use sea_orm::{ColumnTrait, QuerySelect};
        let zones: Vec<String> = restaurant::Entity::find()
            .select_only()
            .column(restaurant::Column::TimeZone)
            .distinct()
            .into_tuple()
            .all(db)
            .await?;
        for name in &zones {
            let offset = offset_minutes(zone(name), now);
            restaurant::Entity::update_many()
                .col_expr(restaurant::Column::UtcOffsetMinutes, Expr::value(offset))
                .filter(restaurant::Column::TimeZone.eq(name.as_str()))
                .filter(restaurant::Column::UtcOffsetMinutes.ne(offset))
                .exec(db)
                .await?;
        }
        remember_zones(zones);
        Ok(())
    }
}

/// Adds `zones` to those the SQL filter knows (also called when a restaurant's zone is set).
pub fn remember_zones(zones: impl IntoIterator<Item = String>) {
    let mut known = ZONES_IN_USE
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for zone in zones {
        if !known.contains(&zone) {
            known.push(zone);
        }
    }
}

/// The offset of each restaurant's zone at `now`, in SQL: a `CASE` over the zones in use,
/// falling back to the stored current offset.
fn offset_at(now: DateTime<Utc>) -> SimpleExpr {
    let known = ZONES_IN_USE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fallback = Expr::col((restaurant::Entity, restaurant::Column::UtcOffsetMinutes));
    if known.is_empty() {
        return fallback;
    }
    let mut case = sea_orm::sea_query::CaseStatement::new();
    for name in known.iter() {
        case = case.case(
            Expr::col((restaurant::Entity, restaurant::Column::TimeZone)).eq(name.as_str()),
            Expr::val(offset_minutes(zone(name), now)),
        );
    }
    case.finally(fallback).into()
}

/// Each restaurant's local date at `now`, in SQL: a `CASE` over the zones in use, falling back
/// to the UTC date for a zone this process has not learnt yet (within a minute of its first
/// use on another replica).
fn local_date_at(now: DateTime<Utc>) -> SimpleExpr {
    let known = ZONES_IN_USE
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let fallback = Expr::val(now.date_naive());
    if known.is_empty() {
        return fallback;
    }
    let mut case = sea_orm::sea_query::CaseStatement::new();
    for name in known.iter() {
        case = case.case(
            Expr::col((restaurant::Entity, restaurant::Column::TimeZone)).eq(name.as_str()),
            Expr::val(now.with_timezone(&zone(name)).date_naive()),
        );
    }
    case.finally(fallback).into()
}

pub(crate) fn distance_key(point: Point) -> SimpleExpr {
    // Squared equirectangular distance in degrees: cheap, portable SQL, and monotonic with the
    // true distance at city scale.
    let scale = point.latitude.to_radians().cos();
    let dlat = Expr::col((restaurant::Entity, restaurant::Column::Latitude)).sub(point.latitude);
    let dlng = Expr::col((restaurant::Entity, restaurant::Column::Longitude))
        .sub(point.longitude)
        .mul(scale);
    dlat.clone().mul(dlat).add(dlng.clone().mul(dlng))
}

fn sort_key(ordering: Ordering, near: Option<Point>) -> AppResult<SimpleExpr> {
    Ok(match ordering.field {
        SortField::Name => Expr::col((restaurant::Entity, restaurant::Column::Name)),
        SortField::Rating => Expr::cust(migration::RATING_MILLI_SQL),
        SortField::Distance => distance_key(
            near.ok_or_else(|| AppError::bad_input("ordering by DISTANCE needs `filter.near`"))?,
        ),
    })
}

/// The closures of the row's restaurant that cover `date`.
fn closed_on(date: SimpleExpr) -> sea_orm::sea_query::SelectStatement {
    use entities::restaurant_closure::{Column as C, Entity as Closures};
    Query::select()
        .expr(Expr::val(1))
        .from(Closures)
        .and_where(
            Expr::col((Closures, C::RestaurantId))
                .equals((restaurant::Entity, restaurant::Column::Id)),
        )
        .and_where(Expr::col((Closures, C::StartsOn)).lte(date.clone()))
        .and_where(Expr::col((Closures, C::EndsOn)).gte(date))
        .take()
}

fn condition(filter: &RestaurantFilter, now: DateTime<Utc>) -> sea_orm::Condition {
    use restaurant::Column as R;
    let mut condition = sea_orm::Condition::all();
    if !filter.cuisines.is_empty() {
        condition = condition.add(
            Expr::col((restaurant::Entity, R::Id)).in_subquery(
                Query::select()
                    .column(restaurant_cuisine::Column::RestaurantId)
                    .from(restaurant_cuisine::Entity)
                    .and_where(
                        Expr::col(restaurant_cuisine::Column::Cuisine)
                            .is_in(filter.cuisines.iter().map(|c| c.to_lowercase())),
                    )
                    .take(),
            ),
        );
    }
    if let Some(text) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let escaped = text
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let like = |column: R| {
            Expr::expr(Func::lower(Expr::col((restaurant::Entity, column))))
                .like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        condition = condition.add(like(R::Name).or(like(R::Description)));
    }
    if let Some(wanted) = filter.open_now {
        let local_now = Expr::val(minute_of_week(now))
            .add(offset_at(now))
            .modulo(MINUTES_PER_WEEK)
            .add(MINUTES_PER_WEEK)
            .modulo(MINUTES_PER_WEEK);
        let open = sea_orm::Condition::all()
            .add(Expr::col((restaurant::Entity, R::IsOpen)).eq(true))
            .add(
                sea_orm::Condition::any()
                    .add(Expr::col((restaurant::Entity, R::PausedUntil)).is_null())
                    .add(Expr::col((restaurant::Entity, R::PausedUntil)).lte(now)),
            )
            .add(Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(opening_hours::Entity)
                    .and_where(
                        Expr::col((opening_hours::Entity, opening_hours::Column::RestaurantId))
                            .equals((restaurant::Entity, R::Id)),
                    )
                    .and_where(
                        Expr::col((opening_hours::Entity, opening_hours::Column::OpensAt))
                            .lte(local_now.clone()),
                    )
                    .and_where(
                        Expr::col((opening_hours::Entity, opening_hours::Column::ClosesAt))
                            .gt(local_now),
                    )
                    .take(),
            ))
            .add(Expr::exists(closed_on(local_date_at(now))).not());
        condition = condition.add(if wanted { open } else { open.not() });
    }
    if let (Some(point), Some(km)) = (filter.near, filter.within_km) {
        let degrees = km / KM_PER_DEGREE;
        condition = condition
            // The latitude band lets the location index narrow the scan.
            .add(
                Expr::col((restaurant::Entity, R::Latitude))
                    .between(point.latitude - degrees, point.latitude + degrees),
            )
            .add(distance_key(point).lte(degrees * degrees));
    }
    if let Some(point) = filter.delivers_to {
        // The same equirectangular distance `orders::delivers_to` computes, radius in degrees.
        let radius = || {
            Expr::col((restaurant::Entity, R::DeliveryRadiusM)).mul(1.0 / (1000.0 * KM_PER_DEGREE))
        };
        condition = condition.add(distance_key(point).lte(radius().mul(radius())));
    }
    condition
}

/// One page of restaurants matching `filter` in `ordering`.
pub async fn list(
    db: &DatabaseConnection,
    filter: &RestaurantFilter,
    ordering: Ordering,
    page: &PageArgs,
    columns: Columns,
    now: DateTime<Utc>,
) -> AppResult<Page<Listed>> {
    filter.validate()?;
    let key = sort_key(ordering, filter.near)?;
    let tag = ordering.tag();
    // Reading backwards walks the ordering from its end.
    let ascending = ordering.ascending == (page.direction == Direction::Forward);
    let mut select = restaurant::Entity::find();
    match columns {
        Columns::Brief => select = select.select_only().columns(Card::BRIEF_COLUMNS),
        Columns::Card => {
            select = select
                .select_only()
                .columns(Card::BRIEF_COLUMNS)
                .columns(Card::REST_COLUMNS);
        }
        Columns::Whole => {}
    }
    let mut select = super::matching(select, condition(filter, now));
    if ordering.field != SortField::Name {
        // By name, the key is the name the row already has.
        select = select.expr_as(key.clone(), "sort_key");
    }
    if let Some(cursor) = &page.cursor {
        let position: KeysetPosition<SortKey> = decode_cursor(cursor)?;
        if position.ordering != tag {
            return Err(AppError::bad_input(
                "this cursor belongs to another ordering of the list",
            ));
        }
        // The key goes into SQL as a value compared with the ordering's column: a key of
        // another type would be a type error in the database, so it is refused here.
        let value = match (ordering.field, position.key) {
            (SortField::Name, SortKey::Text(text)) if !text.contains('\0') => SortKey::Text(text),
            (SortField::Rating, SortKey::Int(rating)) => SortKey::Int(rating),
            (SortField::Distance, SortKey::Float(km)) if km.is_finite() => SortKey::Float(km),
            _ => {
                return Err(AppError::bad_input(
                    "this cursor does not belong to this list; use a cursor from its pages",
                ));
            }
        }
        .into_value();
        let id_col = Expr::col((restaurant::Entity, restaurant::Column::Id));
        let after = if ascending {
            key.clone()
                .gt(value.clone())
                .or(key.clone().eq(value).and(id_col.gt(position.id)))
        } else {
            key.clone()
                .lt(value.clone())
                .or(key.clone().eq(value).and(id_col.lt(position.id)))
        };
        select = select.filter(after);
    }
    let order = if ascending { Order::Asc } else { Order::Desc };
    let statement = select
        .order_by(key, order.clone())
        .order_by(restaurant::Column::Id, order)
        .limit(page.limit + 1)
        .build(db.get_database_backend());
    let rows = db.query_all_raw(statement).await?;
    let mut listed = Vec::with_capacity(rows.len());
    for (index, row) in rows.into_iter().enumerate() {
        // The card's columns, or `find()`'s `Column::iter()`, come first, in order;
        // `sort_key` comes after them. On PostgreSQL the column types are checked on the
        // first row (they are the same in all).
        let (card, whole) = match columns {
            Columns::Brief => (Card::read(&row, index == 0, false)?, None),
            Columns::Card => (Card::read(&row, index == 0, true)?, None),
            Columns::Whole => {
                let whole = restaurant::Model::read(&row, index == 0)?;
                (Card::from(&whole), Some(Arc::new(whole)))
            }
        };
        let key = match ordering.field {
            SortField::Name => SortKey::Text(card.name.clone()),
            SortField::Rating => SortKey::Int(row.try_get("", "sort_key")?),
            SortField::Distance => SortKey::Float(row.try_get("", "sort_key")?),
        };
        listed.push(Listed {
            cursor: KeysetPosition {
                ordering: tag.clone(),
                key,
                id: card.id,
            },
            card: Arc::new(card),
            whole,
        });
    }
    Ok(Page::from_rows(listed, page))
}

/// How many restaurants match `filter`.
pub async fn count(
    db: &DatabaseConnection,
    filter: &RestaurantFilter,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    filter.validate()?;
    let row = db
        .query_one_raw(count_statement(filter, now, db.get_database_backend()))
        .await?;
    let count: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(u64::try_from(count).unwrap_or(0))
}

/// The statement `count` runs: `COUNT(*)` of the table itself, not SeaORM's `count`, which
/// counts a subquery selecting every column, and no `WHERE` when nothing filters, so SQLite
/// counts the whole table from its b-tree without reading a row.
pub fn count_statement(
    filter: &RestaurantFilter,
    now: DateTime<Utc>,
    backend: sea_orm::DbBackend,
) -> sea_orm::Statement {
    super::matching(
        restaurant::Entity::find()
            .select_only()
            .expr(Expr::cust("COUNT(*)")),
        condition(filter, now),
    )
    .build(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_wraps_around_the_week() {
        use chrono::TimeZone;
        // Monday 00:10 UTC is still Sunday evening in New York.
        let monday = Utc.with_ymd_and_hms(2026, 12, 7, 0, 10, 0).unwrap();
        assert_eq!(minute_of_week(monday), 10);
        assert_eq!(
            local_minute_of_week(zone("America/New_York"), monday),
            MINUTES_PER_WEEK - 5 * 60 + 10
        );
    }

    #[test]
    fn haversine_matches_a_known_distance() {
        let berlin = Point::new(52.5200, 13.4050).unwrap();
        let paris = Point::new(48.8566, 2.3522).unwrap();
        let km = berlin.distance_km(paris);
        assert!((km - 878.0).abs() < 5.0, "{km}");
    }
}

#[cfg(test)]
mod zone_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn local_time_follows_daylight_saving_time() {
        let berlin = zone("Europe/Berlin");
        // Sunday 29 March 2026, 01:00 UTC: Berlin's clocks jump from 02:00 to 03:00.
        let before = Utc.with_ymd_and_hms(2026, 3, 29, 0, 59, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 29, 1, 0, 0).unwrap();
        assert_eq!(local_minute_of_week(berlin, before), 6 * 1440 + 60 + 59);
        assert_eq!(local_minute_of_week(berlin, after), 6 * 1440 + 3 * 60);
        assert_eq!(
            (
                offset_minutes(berlin, before),
                offset_minutes(berlin, after)
            ),
            (60, 120)
        );
        // Sunday 25 October 2026, 01:00 UTC: back from 03:00 to 02:00.
        let autumn = Utc.with_ymd_and_hms(2026, 10, 25, 1, 0, 0).unwrap();
        assert_eq!(local_minute_of_week(berlin, autumn), 6 * 1440 + 2 * 60);
        assert_eq!(offset_minutes(berlin, autumn), 60);
        // Across the week's end: Monday 00:30 in Auckland is Sunday 11:30 UTC in December.
        let auckland = zone("Pacific/Auckland");
        let sunday = Utc.with_ymd_and_hms(2026, 12, 6, 11, 30, 0).unwrap();
        assert_eq!(local_minute_of_week(auckland, sunday), 30);
        assert_eq!(offset_minutes(auckland, sunday), 13 * 60);
        assert_eq!(zone("Not/AZone"), Tz::UTC);
    }
}
