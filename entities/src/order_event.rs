//! One change of an order (a status move or a courier's claim): who made it, from where, to
//! where, when, and which version of the order it made. In id order, the log live updates
//! are read from.

use sea_orm::entity::prelude::*;

use crate::{OrderEventKind, OrderStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: i64,
    /// The user who made the move; `None` for moves made by the system.
    pub actor_id: Option<i64>,
    /// `None` for the event that created the order.
    pub from_status: Option<OrderStatus>,
    pub to_status: OrderStatus,
    /// Free text such as a rejection or cancellation reason.
    pub reason: Option<String>,
    pub created_at: DateTimeUtc,
    /// The order's version this change made (1 for placing it).
    pub version: i32,
    pub kind: OrderEventKind,
}

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
        from = "Column::ActorId",
        to = "super::user::Column::Id"
    )]
    Actor,
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Actor.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
