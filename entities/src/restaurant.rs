//! A restaurant on the marketplace.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "restaurants")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub owner_id: i64,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    pub description: String,
    pub address: String,
    pub latitude: f64,
    pub longitude: f64,
    /// Offset of the restaurant's local time from UTC, used to read its opening hours.
    /// The offset `time_zone` has now, kept current by the server (daylight saving time
    /// moves it); what the SQL open-now filter falls back to.
    pub utc_offset_minutes: i32,
    /// Whether the restaurant accepts orders at all (a switch staff flip), besides its hours.
    pub is_open: bool,
    /// ISO 4217 code of the menu's and the fee's currency.
    pub currency: String,
    /// Delivery fee in minor units of `currency`.
    pub delivery_fee: i64,
    pub rating_sum: i64,
    pub rating_count: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// How far from the restaurant it delivers, in metres.
    pub delivery_radius_m: i32,
    /// How long the kitchen usually takes for an order, in minutes.
    pub preparation_minutes: i32,
    /// IANA time zone of its opening hours, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// The smallest subtotal it takes an order for, in minor units of `currency`.
    pub minimum_order: i64,
    /// Not taking orders until then ("busy, back at 19:30").
    pub paused_until: Option<DateTimeUtc>,
    /// A phone number customers and couriers may call, as the restaurant gives it.
    pub phone: Option<String>,
}

crate::by_position::by_position!(
    id,
    owner_id,
    slug,
    name,
    description,
    address,
    latitude,
    longitude,
    utc_offset_minutes,
    is_open,
    currency,
    delivery_fee,
    rating_sum,
    rating_count,
    created_at,
    updated_at,
    delivery_radius_m,
    preparation_minutes,
    time_zone,
    minimum_order,
    paused_until,
    phone
);

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::OwnerId",
        to = "super::user::Column::Id"
    )]
    Owner,
    #[sea_orm(has_many = "super::restaurant_cuisine::Entity")]
    Cuisines,
    #[sea_orm(has_many = "super::opening_hours::Entity")]
    OpeningHours,
    #[sea_orm(has_many = "super::menu_category::Entity")]
    MenuCategories,
    #[sea_orm(has_many = "super::menu_item::Entity")]
    MenuItems,
    #[sea_orm(has_many = "super::review::Entity")]
    Reviews,
    #[sea_orm(has_many = "super::restaurant_staff::Entity")]
    Staff,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Owner.def()
    }
}

impl Related<super::restaurant_cuisine::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Cuisines.def()
    }
}

impl Related<super::opening_hours::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OpeningHours.def()
    }
}

impl Related<super::menu_category::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MenuCategories.def()
    }
}

impl Related<super::menu_item::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MenuItems.def()
    }
}

impl Related<super::review::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Reviews.def()
    }
}

impl Related<super::restaurant_staff::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Staff.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
