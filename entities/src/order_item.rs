//! One line of an order; name and unit price are copied from the menu when ordering, so later
//! menu edits do not rewrite history.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub order_id: i64,
    pub menu_item_id: i64,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i32,
    pub note: Option<String>,
    /// The options chosen, as a JSON array of `{optionId, group, name, priceDelta}` copied
    /// from the menu when ordering; `unit_price` includes their deltas.
    pub options: Json,
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
        belongs_to = "super::menu_item::Entity",
        from = "Column::MenuItemId",
        to = "super::menu_item::Column::Id"
    )]
    MenuItem,
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Order.def()
    }
}

impl Related<super::menu_item::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::MenuItem.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
