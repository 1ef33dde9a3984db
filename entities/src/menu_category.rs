//! A section of a restaurant's menu, shown in `position` order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "menu_categories")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub restaurant_id: i64,
    pub name: String,
    pub position: i32,
    pub created_at: DateTimeUtc,
    /// When it was deleted; its items ordered before keep pointing at it.
    pub deleted_at: Option<DateTimeUtc>,
    /// The id a point-of-sale system knows it by (`importMenu`); unique per restaurant.
    pub external_id: Option<String>,
}

crate::by_position::by_position!(
    id,
    restaurant_id,
    name,
    position,
    created_at,
    deleted_at,
    external_id
);

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::restaurant::Entity",
        from = "Column::RestaurantId",
        to = "super::restaurant::Column::Id",
        on_delete = "Cascade"
    )]
    Restaurant,
    #[sea_orm(has_many = "super::menu_item::Entity")]
    Items,
}

impl Related<super::restaurant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Restaurant.def()
    }
}

impl Related<super::menu_item::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Items.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
