//! A courier's delivery of one order.

use sea_orm::entity::prelude::*;

use crate::DeliveryStatus;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub order_id: i64,
    pub courier_id: i64,
    pub status: DeliveryStatus,
    pub last_latitude: Option<f64>,
    pub last_longitude: Option<f64>,
    pub location_updated_at: Option<DateTimeUtc>,
    pub claimed_at: DateTimeUtc,
    pub picked_up_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
}

crate::by_position::by_position!(
    id,
    order_id,
    courier_id,
    status,
    last_latitude,
    last_longitude,
    location_updated_at,
    claimed_at,
    picked_up_at,
    delivered_at
);

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::order::Entity",
        from = "Column::OrderId",
        to = "super::order::Column::Id",
        on_delete = "Cascade"
    )]
    Order,
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::CourierId",
        to = "super::user::Column::Id"
    )]
    Courier,
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Courier.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
