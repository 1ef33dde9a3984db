//! A restaurant's settings and pausing orders.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::types::{Restaurant, Weekday};
use crate::{
    auth::guards::viewer,
    graphql::{
        common::{GeoPointInput, Timestamp},
        payloads::UserError,
        relay::{GlobalId, NodeKind},
    },
    services::{
        ErrorCode, InputError,
        restaurant_settings::{self as service, Closure, Period, Settings},
    },
};

/// One weekly opening period, in the restaurant's time zone.
#[derive(InputObject)]
pub struct OpeningPeriodInput {
    /// The day it opens.
    pub day: Weekday,
    /// Opening time, `HH:MM`.
    pub opens: String,
    /// Closing time, `HH:MM`; at or before `opens` means the next day (`00:00` is midnight).
    pub closes: String,
}

/// Changes to a restaurant's settings; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateRestaurantInput {
    /// The restaurant.
    pub id: ID,
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// A new slug (2 to 60 of `a-z`, `0-9`, inner `-`; unique, else `CONFLICT`). The old slug
    /// stops resolving: `restaurant(slug:)` answers null for it; IDs never change.
    pub slug: Option<String>,
    /// At most 2000 characters.
    pub description: Option<String>,
    /// 1 to 300 characters.
    pub address: Option<String>,
    /// Where it is (pickups, distances and the delivery area are measured from here).
    pub location: Option<GeoPointInput>,
    /// A decimal amount, 0 to 100.00.
    pub delivery_fee: Option<String>,
    /// A decimal amount, 0 to 1000.00.
    pub minimum_order: Option<String>,
    /// 100 to 50000.
    pub delivery_radius_meters: Option<i32>,
    /// 1 to 240.
    pub preparation_minutes: Option<i32>,
    /// An IANA time zone name, e.g. `Europe/Berlin`; the opening hours are in it.
    pub time_zone: Option<String>,
    /// The whole week's hours, replacing the old ones; periods must not overlap.
    pub opening_hours: Option<Vec<OpeningPeriodInput>>,
    /// A phone number for customers and couriers (digits, spaces, `+-()/.`; at most 40);
    /// an empty string removes it.
    pub phone: Option<String>,
    /// The cuisines it is listed under (at most 10, each 1 to 40 characters; stored in lower
    /// case), replacing the old ones: what `restaurants(filter: {cuisines})` matches.
    pub cuisines: Option<Vec<String>>,
    /// Days it is closed whatever its hours say (holidays), replacing the old ones; at most
    /// 50. Past ones may be left out.
    pub closures: Option<Vec<ClosureInput>>,
}

/// Days a restaurant is closed, in its own time zone.
#[derive(InputObject)]
pub struct ClosureInput {
    /// The first day closed.
    pub starts_on: chrono::NaiveDate,
    /// The last day closed (the same as `startsOn` for one day; at most a year after it).
    pub ends_on: chrono::NaiveDate,
    /// Why, for customers ("Christmas"); at most 200 characters.
    #[graphql(default)]
    pub reason: String,
}

/// A new restaurant.
#[derive(InputObject)]
pub struct CreateRestaurantInput {
    /// 1 to 100 characters.
    pub name: String,
    /// 2 to 60 of `a-z`, `0-9` and inner `-`; unique.
    pub slug: String,
    /// The user who runs it: they become its owner and first staff member.
    pub owner_id: ID,
    /// 1 to 300 characters.
    pub address: String,
    /// Where it is.
    pub location: GeoPointInput,
    /// Its IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// ISO 4217 code of its prices (default `EUR`).
    pub currency: Option<String>,
}

/// Pausing orders.
#[derive(InputObject)]
pub struct PauseOrdersInput {
    /// The restaurant.
    pub restaurant_id: ID,
    /// Until when no orders are taken: in the future, at most 7 days ahead.
    pub until: Timestamp,
}

/// Taking orders again.
#[derive(InputObject)]
pub struct ResumeOrdersInput {
    /// The restaurant.
    pub restaurant_id: ID,
}

/// The restaurant after the change.
#[derive(SimpleObject)]
pub struct RestaurantPayload {
    /// The restaurant; null on a user error.
    pub restaurant: Option<Restaurant>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

fn payload(result: Result<entities::restaurant::Model, InputError>) -> RestaurantPayload {
    match result {
        Ok(model) => RestaurantPayload {
            restaurant: Some(Restaurant::from(std::sync::Arc::new(model))),
            user_errors: Vec::new(),
        },
        Err(error) => RestaurantPayload {
            restaurant: None,
            user_errors: vec![error.into()],
        },
    }
}

/// Minutes of the day in `HH:MM`.
fn clock(value: &str) -> Option<i32> {
    let (hours, minutes) = value.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    ((0..24).contains(&hours) && (0..60).contains(&minutes)).then_some(hours * 60 + minutes)
}

fn periods(input: Vec<OpeningPeriodInput>) -> Result<Vec<Period>, InputError> {
    input
        .into_iter()
        .enumerate()
        .map(|(index, period)| {
            let time = |field: &str, value: &str| {
                clock(value).ok_or_else(|| {
                    InputError::in_list(
                        "openingHours",
                        index,
                        field,
                        ErrorCode::Invalid,
                        "a time as HH:MM, 00:00 to 23:59",
                    )
                })
            };
            Ok(Period {
                day: period.day as i32,
                opens: time("opens", &period.opens)?,
                closes: time("closes", &period.closes)?,
            })
        })
        .collect()
}

/// Running a restaurant: its settings (its owner and admins) and pausing orders (its staff
/// too). API tokens need `menu:write`; everyone else gets `FORBIDDEN`.
#[derive(Default)]
pub struct RestaurantMutation;

#[Object]
impl RestaurantMutation {
    /// Onboards a restaurant (admins, with a full session). It takes orders once its owner has
    /// set opening hours (`updateRestaurant`) and a menu.
    async fn create_restaurant(
        &self,
        ctx: &Context<'_>,
        input: CreateRestaurantInput,
    ) -> Result<RestaurantPayload> {
        let new = service::NewRestaurant {
            name: input.name,
            slug: input.slug,
            owner_id: GlobalId::decode_as(&input.owner_id, NodeKind::User)?,
            address: input.address,
            location: (input.location.latitude, input.location.longitude),
            time_zone: input.time_zone,
            currency: input.currency.unwrap_or_else(|| "EUR".into()),
        };
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(payload(
            service::create(db, viewer(ctx)?, &new, Utc::now()).await?,
        ))
    }

    /// Changes a restaurant's settings: name, description, address and location, delivery fee,
    /// minimum order, delivery radius, preparation time, time zone and weekly hours. Its owner
    /// and admins only.
    async fn update_restaurant(
        &self,
        ctx: &Context<'_>,
        input: UpdateRestaurantInput,
    ) -> Result<RestaurantPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::Restaurant)?;
        let opening_hours = match input.opening_hours.map(periods).transpose() {
            Ok(hours) => hours,
            Err(error) => return Ok(payload(Err(error))),
        };
        let settings = Settings {
            name: input.name,
            slug: input.slug,
            description: input.description,
            address: input.address,
            location: input.location.map(|l| (l.latitude, l.longitude)),
            delivery_fee: input.delivery_fee,
            minimum_order: input.minimum_order,
            delivery_radius_meters: input.delivery_radius_meters,
            preparation_minutes: input.preparation_minutes,
            time_zone: input.time_zone,
            opening_hours,
            phone: input.phone,
            cuisines: input.cuisines,
            closures: input.closures.map(|list| {
                list.into_iter()
                    .map(|closure| Closure {
                        starts_on: closure.starts_on,
                        ends_on: closure.ends_on,
                        reason: closure.reason,
                    })
                    .collect()
            }),
        };
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(payload(
            service::update(db, viewer(ctx)?, id, &settings, Utc::now()).await?,
        ))
    }

    /// Stops taking orders until a time ("busy, back at 19:30"): `placeOrder` answers
    /// `RESTAURANT_PAUSED` saying until when, and `openNow` is false. Its owner and staff.
    async fn pause_orders(
        &self,
        ctx: &Context<'_>,
        input: PauseOrdersInput,
    ) -> Result<RestaurantPayload> {
        let id = GlobalId::decode_as(&input.restaurant_id, NodeKind::Restaurant)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(payload(
            service::pause(db, viewer(ctx)?, id, Some(input.until.0), Utc::now()).await?,
        ))
    }

    /// Takes orders again before the pause ends. Its owner and staff.
    async fn resume_orders(
        &self,
        ctx: &Context<'_>,
        input: ResumeOrdersInput,
    ) -> Result<RestaurantPayload> {
        let id = GlobalId::decode_as(&input.restaurant_id, NodeKind::Restaurant)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(payload(
            service::pause(db, viewer(ctx)?, id, None, Utc::now()).await?,
        ))
    }
}
