//! A restaurant's own settings: its owner (and admins; API tokens need `menu:write`) edits
//! them; its staff may pause and resume orders on a busy night, nothing else.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entities::{opening_hours, restaurant, restaurant_closure, restaurant_cuisine};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QuerySelect, sea_query::LockType,
};

use super::{
    ErrorCode, InputError, ServiceResult, bounded_text, is_unique_violation, location,
    restaurants::{MINUTES_PER_WEEK, offset_minutes, remember_zones},
};
use crate::{
    auth::{Scope, Viewer},
    db::begin_write,
    error::{AppError, AppResult},
    graphql::common::Money,
};

/// Highest delivery fee, in minor units (100.00 in a currency with cents).
pub const MAX_DELIVERY_FEE: i64 = 10_000;
/// Highest minimum order, in minor units (1000.00 in a currency with cents).
pub const MAX_MINIMUM_ORDER: i64 = 100_000;
/// Longest a pause may last.
pub const MAX_PAUSE: Duration = Duration::days(7);

/// One weekly opening period: its day (0 = Monday), and opening and closing minute of the day;
/// a closing minute at or before the opening one means the next day.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub day: i32,
    pub opens: i32,
    pub closes: i32,
}

/// Changes to a restaurant's settings; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub name: Option<String>,
    /// A new slug: the old one stops resolving (`restaurant(slug:)` answers null for it).
    pub slug: Option<String>,
    pub description: Option<String>,
    pub address: Option<String>,
    pub location: Option<(f64, f64)>,
    /// Decimal amounts in the restaurant's currency.
    pub delivery_fee: Option<String>,
    pub minimum_order: Option<String>,
    pub delivery_radius_meters: Option<i32>,
    pub preparation_minutes: Option<i32>,
    pub time_zone: Option<String>,
    /// The whole week, replacing the old hours.
    pub opening_hours: Option<Vec<Period>>,
    /// A phone number; empty removes it.
    pub phone: Option<String>,
    /// The cuisines it is listed under, replacing the old ones.
    pub cuisines: Option<Vec<String>>,
    /// Dated closures, replacing the old ones.
    pub closures: Option<Vec<Closure>>,
}

/// Days the restaurant is closed whatever its hours say, both included, in its local time.
#[derive(Debug, Clone)]
pub struct Closure {
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub reason: String,
}

/// Most cuisines a restaurant is listed under.
pub const MAX_CUISINES: usize = 10;
/// Most dated closures a restaurant keeps.
pub const MAX_CLOSURES: usize = 50;
/// Longest closure, in days.
pub const MAX_CLOSURE_DAYS: i64 = 366;

/// A phone number as people write them: 3 to 40 of digits, spaces and `+-()/.`, with at
/// least three digits; `None` for an empty one.
fn check_phone(phone: &str) -> Result<Option<String>, InputError> {
    let phone = phone.trim();
    if phone.is_empty() {
        return Ok(None);
    }
    let allowed = phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-()/.".contains(c));
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    if !allowed || digits < 3 || phone.chars().count() > 40 {
        return Err(InputError::new(
            "phone",
            ErrorCode::Invalid,
            "a phone number: up to 40 of digits, spaces and + - ( ) / .",
        ));
    }
    Ok(Some(phone.to_owned()))
}

/// Cuisines in stored form: trimmed, lower case, without repeats.
fn check_cuisines(cuisines: &[String]) -> Result<Vec<String>, InputError> {
    let mut stored: Vec<String> = Vec::with_capacity(cuisines.len());
    for (index, cuisine) in cuisines.iter().enumerate() {
        let cuisine = bounded_text("cuisines", cuisine, 1, 40)
            .map_err(|error| {
                InputError::at(
                    &["cuisines".to_owned(), index.to_string()],
                    error.code,
                    error.message,
                )
            })?
            .to_lowercase();
        if !stored.contains(&cuisine) {
            stored.push(cuisine);
        }
    }
    if stored.len() > MAX_CUISINES {
        return Err(InputError::new(
            "cuisines",
            ErrorCode::Invalid,
            format!("at most {MAX_CUISINES} cuisines"),
        ));
    }
    Ok(stored)
}

/// Checks closures: each from one day to another at most a year later, with a reason.
fn check_closures(closures: &[Closure]) -> Result<Vec<Closure>, InputError> {
    if closures.len() > MAX_CLOSURES {
        return Err(InputError::new(
            "closures",
            ErrorCode::Invalid,
            format!("at most {MAX_CLOSURES} closures"),
        ));
    }
    closures
        .iter()
        .enumerate()
        .map(|(index, closure)| {
            let days = (closure.ends_on - closure.starts_on).num_days();
            if !(0..MAX_CLOSURE_DAYS).contains(&days) {
                return Err(InputError::in_list(
                    "closures",
                    index,
                    "endsOn",
                    ErrorCode::Invalid,
                    format!("on or after startsOn, at most {MAX_CLOSURE_DAYS} days in all"),
                ));
            }
            let reason = bounded_text("reason", &closure.reason, 0, 200).map_err(|error| {
                InputError::in_list("closures", index, "reason", error.code, error.message)
            })?;
            Ok(Closure {
                reason,
                ..closure.clone()
            })
        })
        .collect()
}

/// The restaurant, if `viewer` may act on it: with `staff_too`, its staff as well as its owner
/// and admins; tokens need `menu:write`. FORBIDDEN otherwise. Its row stays locked until the
/// transaction ends, as in `menus::authorize`.
pub(crate) async fn authorize(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    id: i64,
    staff_too: bool,
) -> AppResult<Option<restaurant::Model>> {
    let user = viewer.require_user()?;
    viewer.require_scope(Scope::MenuWrite)?;
    let Some(found) = restaurant::Entity::find_by_id(id)
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    let allowed =
        viewer.is_admin() || found.owner_id == user.id || (staff_too && viewer.is_staff_of(id));
    if allowed {
        Ok(Some(found))
    } else {
        Err(AppError::Forbidden)
    }
}

fn amount(field: &str, value: &str, currency: &str, most: i64) -> Result<i64, InputError> {
    Money::parse_minor(value.trim(), currency)
        .filter(|minor| (0..=most).contains(minor))
        .ok_or_else(|| {
            InputError::new(
                field,
                ErrorCode::Invalid,
                format!(
                    "a decimal amount from 0 to {} {currency}",
                    Money::from_minor(most, currency).amount
                ),
            )
        })
}

fn in_range(
    field: &str,
    value: i32,
    range: std::ops::RangeInclusive<i32>,
) -> Result<i32, InputError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(InputError::new(
            field,
            ErrorCode::Invalid,
            format!("{} to {}", range.start(), range.end()),
        ))
    }
}

/// The stored rows of `periods`: minutes of the week, a period over the week's end split in
/// two. Refuses bad times and overlaps.
fn week_rows(periods: &[Period]) -> Result<Vec<(i32, i32)>, InputError> {
    let mut rows = Vec::new();
    for (index, period) in periods.iter().enumerate() {
        let bad = |field: &str, message: &str| {
            InputError::in_list("openingHours", index, field, ErrorCode::Invalid, message)
        };
        if !(0..1440).contains(&period.opens) {
            return Err(bad("opens", "a time from 00:00 to 23:59"));
        }
        if !(0..1440).contains(&period.closes) {
            return Err(bad("closes", "a time from 00:00 to 23:59"));
        }
        let opens = period.day * 1440 + period.opens;
        let length = (period.closes - period.opens).rem_euclid(1440);
        let length = if length == 0 { 1440 } else { length };
        let closes = opens + length;
        if closes <= MINUTES_PER_WEEK {
            rows.push((opens, closes));
        } else {
            rows.push((opens, MINUTES_PER_WEEK));
            rows.push((0, closes - MINUTES_PER_WEEK));
        }
    }
    let mut sorted = rows.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|pair| pair[1].0 < pair[0].1) {
        return Err(InputError::new(
            "openingHours",
            ErrorCode::Invalid,
            "opening periods overlap",
        ));
    }
    Ok(rows)
}

/// Changes a restaurant's settings (its owner and admins), in one transaction.
pub async fn update(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
    settings: &Settings,
    now: DateTime<Utc>,
) -> ServiceResult<restaurant::Model> {
    let txn = begin_write(db).await?;
    let Some(found) = authorize(&txn, viewer, id, false).await? else {
        return Ok(Err(InputError::new(
            "id",
            ErrorCode::NotFound,
            "no such restaurant",
        )));
    };
    let currency = found.currency.clone();
    let mut active: restaurant::ActiveModel = found.into();
    let (mut hours, mut cuisines, mut closures) = (None, None, None);
    let checked: Result<(), InputError> = (|| {
        if let Some(name) = &settings.name {
            active.name = Set(bounded_text("name", name, 1, 100)?);
        }
        if let Some(slug) = &settings.slug {
            active.slug = Set(check_slug(slug)?);
        }
        if let Some(description) = &settings.description {
            active.description = Set(bounded_text("description", description, 0, 2000)?);
        }
        if let Some(address) = &settings.address {
            active.address = Set(bounded_text("address", address, 1, 300)?);
        }
        if let Some((latitude, longitude)) = settings.location {
            location("location", latitude, longitude)?;
            active.latitude = Set(latitude);
            active.longitude = Set(longitude);
        }
        if let Some(fee) = &settings.delivery_fee {
            active.delivery_fee = Set(amount("deliveryFee", fee, &currency, MAX_DELIVERY_FEE)?);
        }
        if let Some(minimum) = &settings.minimum_order {
            active.minimum_order = Set(amount(
                "minimumOrder",
                minimum,
                &currency,
                MAX_MINIMUM_ORDER,
            )?);
        }
        if let Some(radius) = settings.delivery_radius_meters {
            active.delivery_radius_m = Set(in_range("deliveryRadiusMeters", radius, 100..=50_000)?);
        }
        if let Some(minutes) = settings.preparation_minutes {
            active.preparation_minutes = Set(in_range("preparationMinutes", minutes, 1..=240)?);
        }
        if let Some(name) = &settings.time_zone {
            let zone: chrono_tz::Tz = name.trim().parse().map_err(|_| {
                InputError::new(
                    "timeZone",
                    ErrorCode::Invalid,
                    "an IANA time zone name, e.g. Europe/Berlin",
                )
            })?;
            active.time_zone = Set(zone.name().to_owned());
            active.utc_offset_minutes = Set(offset_minutes(zone, now));
        }
        if let Some(periods) = &settings.opening_hours {
            hours = Some(week_rows(periods)?);
        }
        if let Some(phone) = &settings.phone {
            active.phone = Set(check_phone(phone)?);
        }
        if let Some(list) = &settings.cuisines {
            cuisines = Some(check_cuisines(list)?);
        }
        if let Some(list) = &settings.closures {
            closures = Some(check_closures(list)?);
        }
        Ok(())
    })();
    if let Err(error) = checked {
        return Ok(Err(error));
    }
    if let Some(slug) = active.slug.try_as_ref()
        && slug_taken(&txn, slug, Some(id)).await?
    {
        return Ok(Err(taken()));
    }
    active.updated_at = Set(now);
    // The slug checked above can be taken by another restaurant committing meanwhile; the
    // unique index tells, and it is the same user error.
    let updated = match active.update(&txn).await {
        Ok(updated) => updated,
        Err(error) if is_unique_violation(&error) => return Ok(Err(taken())),
        Err(error) => return Err(error.into()),
    };
    if let Some(rows) = hours {
        opening_hours::Entity::delete_many()
            .filter(opening_hours::Column::RestaurantId.eq(id))
            .exec(&txn)
            .await?;
        if !rows.is_empty() {
            opening_hours::Entity::insert_many(rows.into_iter().map(|(opens, closes)| {
                opening_hours::ActiveModel {
                    restaurant_id: Set(id),
                    opens_at: Set(opens),
                    closes_at: Set(closes),
                }
            }))
            .exec_without_returning(&txn)
            .await?;
        }
    }
    if let Some(cuisines) = cuisines {
        restaurant_cuisine::Entity::delete_many()
            .filter(restaurant_cuisine::Column::RestaurantId.eq(id))
            .exec(&txn)
            .await?;
        if !cuisines.is_empty() {
            restaurant_cuisine::Entity::insert_many(cuisines.into_iter().map(|cuisine| {
                restaurant_cuisine::ActiveModel {
                    restaurant_id: Set(id),
                    cuisine: Set(cuisine),
                }
            }))
            .exec_without_returning(&txn)
            .await?;
        }
    }
    if let Some(closures) = closures {
        restaurant_closure::Entity::delete_many()
            .filter(restaurant_closure::Column::RestaurantId.eq(id))
            .exec(&txn)
            .await?;
        if !closures.is_empty() {
            restaurant_closure::Entity::insert_many(closures.into_iter().map(|closure| {
                restaurant_closure::ActiveModel {
                    restaurant_id: Set(id),
                    starts_on: Set(closure.starts_on),
                    ends_on: Set(closure.ends_on),
                    reason: Set(closure.reason),
                    created_at: Set(now),
                    ..Default::default()
                }
            }))
            .exec_without_returning(&txn)
            .await?;
        }
    }
    txn.commit().await?;
    remember_zones([updated.time_zone.clone()]);
    Ok(Ok(updated))
}

/// Checks a slug: 2 to 60 of `a-z`, `0-9` and inner `-`.
fn check_slug(slug: &str) -> Result<String, InputError> {
    let slug = slug.trim();
    let valid = (2..=60).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if valid {
        Ok(slug.to_owned())
    } else {
        Err(InputError::new(
            "slug",
            ErrorCode::Invalid,
            "2 to 60 lower-case letters, digits and inner hyphens",
        ))
    }
}

fn taken() -> InputError {
    InputError::new(
        "slug",
        ErrorCode::Conflict,
        "another restaurant has this slug",
    )
}

/// Whether a restaurant other than `except` has `slug`.
async fn slug_taken(txn: &DatabaseTransaction, slug: &str, except: Option<i64>) -> AppResult<bool> {
    let mut query = restaurant::Entity::find().filter(restaurant::Column::Slug.eq(slug));
    if let Some(id) = except {
        query = query.filter(restaurant::Column::Id.ne(id));
    }
    Ok(query.one(txn).await?.is_some())
}

/// A new restaurant, as an admin onboards it.
#[derive(Debug, Clone)]
pub struct NewRestaurant {
    pub name: String,
    pub slug: String,
    pub owner_id: i64,
    pub address: String,
    pub location: (f64, f64),
    pub time_zone: String,
    pub currency: String,
}

/// Onboards a restaurant (admins): its owner becomes its first staff member and may then
/// edit it. It takes orders once it has opening hours and a menu.
pub async fn create(
    db: &DatabaseConnection,
    viewer: &Viewer,
    new: &NewRestaurant,
    now: DateTime<Utc>,
) -> ServiceResult<restaurant::Model> {
    viewer.require_full_session()?;
    viewer.require_role(crate::auth::Role::Admin)?;
    let checked = (|| -> Result<_, InputError> {
        let name = bounded_text("name", &new.name, 1, 100)?;
        let slug = check_slug(&new.slug)?;
        let address = bounded_text("address", &new.address, 1, 300)?;
        let (latitude, longitude) = new.location;
        location("location", latitude, longitude)?;
        let zone: chrono_tz::Tz = new.time_zone.trim().parse().map_err(|_| {
            InputError::new(
                "timeZone",
                ErrorCode::Invalid,
                "an IANA time zone name, e.g. Europe/Berlin",
            )
        })?;
        let currency = new.currency.trim().to_owned();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(InputError::new(
                "currency",
                ErrorCode::Invalid,
                "an ISO 4217 code, e.g. EUR",
            ));
        }
        Ok((name, slug, address, zone, currency))
    })();
    let (name, slug, address, zone, currency) = match checked {
        Ok(checked) => checked,
        Err(error) => return Ok(Err(error)),
    };
    let txn = begin_write(db).await?;
    if entities::user::Entity::find_by_id(new.owner_id)
        .one(&txn)
        .await?
        .is_none()
    {
        return Ok(Err(InputError::new(
            "ownerId",
            ErrorCode::NotFound,
            "no such user",
        )));
    }
    if slug_taken(&txn, &slug, None).await? {
        return Ok(Err(taken()));
    }
    let created = restaurant::ActiveModel {
        owner_id: Set(new.owner_id),
        slug: Set(slug),
        name: Set(name),
        description: Set(String::new()),
        address: Set(address),
        latitude: Set(new.location.0),
        longitude: Set(new.location.1),
        utc_offset_minutes: Set(offset_minutes(zone, now)),
        is_open: Set(true),
        currency: Set(currency),
        delivery_fee: Set(0),
        rating_sum: Set(0),
        rating_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        delivery_radius_m: Set(5_000),
        preparation_minutes: Set(20),
        time_zone: Set(zone.name().to_owned()),
        minimum_order: Set(0),
        paused_until: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    // As in `update`: a slug another restaurant took meanwhile.
    let created = match created {
        Ok(created) => created,
        Err(error) if is_unique_violation(&error) => return Ok(Err(taken())),
        Err(error) => return Err(error.into()),
    };
    entities::restaurant_staff::ActiveModel {
        restaurant_id: Set(created.id),
        user_id: Set(new.owner_id),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    remember_zones([created.time_zone.clone()]);
    Ok(Ok(created))
}

/// Stops taking orders until `until` (its owner and staff, admins); `None` takes orders again.
pub async fn pause(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
    until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ServiceResult<restaurant::Model> {
    if let Some(until) = until
        && (until <= now || until > now + MAX_PAUSE)
    {
        return Ok(Err(InputError::new(
            "until",
            ErrorCode::Invalid,
            "a time in the future, at most 7 days from now",
        )));
    }
    let txn = begin_write(db).await?;
    let Some(found) = authorize(&txn, viewer, id, true).await? else {
        return Ok(Err(InputError::new(
            "restaurantId",
            ErrorCode::NotFound,
            "no such restaurant",
        )));
    };
    let mut active: restaurant::ActiveModel = found.into();
    active.paused_until = Set(until);
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(Ok(updated))
}
