//! A customer's order from one restaurant.

use sea_orm::entity::prelude::*;

use crate::OrderStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub customer_id: i64,
    pub restaurant_id: i64,
    pub status: OrderStatus,
    /// Sum of the lines in minor units of `currency`.
    pub subtotal: i64,
    pub delivery_fee: i64,
    pub total: i64,
    pub currency: String,
    pub delivery_address: String,
    pub delivery_latitude: f64,
    pub delivery_longitude: f64,
    /// Client-chosen key; unique per customer so a retried request finds the first order.
    pub idempotency_key: String,
    /// Hash of the request payload, to tell a retry from a different order under the same key.
    pub request_fingerprint: String,
    /// Incremented by every status change, for optimistic concurrency.
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Notes for the courier, from the saved address the order was placed with.
    pub delivery_notes: Option<String>,
}

crate::by_position::by_position!(
    id,
    customer_id,
    restaurant_id,
    status,
    subtotal,
    delivery_fee,
    total,
    currency,
    delivery_address,
    delivery_latitude,
    delivery_longitude,
    idempotency_key,
    request_fingerprint,
    version,
    created_at,
    updated_at,
    delivery_notes
);

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::CustomerId",
        to = "super::user::Column::Id"
    )]
    Customer,
    #[sea_orm(
        belongs_to = "super::restaurant::Entity",
        from = "Column::RestaurantId",
        to = "super::restaurant::Column::Id"
    )]
    Restaurant,
    #[sea_orm(has_many = "super::order_item::Entity")]
    Items,
    #[sea_orm(has_many = "super::order_event::Entity")]
    Events,
    #[sea_orm(has_one = "super::delivery::Entity")]
    Delivery,
    #[sea_orm(has_one = "super::review::Entity")]
    Review,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Customer.def()
    }
}

impl Related<super::restaurant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Restaurant.def()
    }
}

impl Related<super::order_item::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Items.def()
    }
}

impl Related<super::order_event::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Events.def()
    }
}

impl Related<super::delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Delivery.def()
    }
}

impl Related<super::review::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Review.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
