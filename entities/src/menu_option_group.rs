//! A choice to make about a menu item ("Size": exactly one of Small / Large; "Extras": up to
//! three). Groups and their options are replaced freely: order lines copy what was chosen.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "menu_option_groups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub restaurant_id: i64,
    pub menu_item_id: i64,
    pub name: String,
    /// Fewest options a line must choose from the group (1 or more: required).
    pub min_choices: i32,
    /// Most options a line may choose from the group.
    pub max_choices: i32,
    pub position: i32,
    /// The id a point-of-sale system knows it by (`importMenu`); unique per item.
    pub external_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::menu_item::Entity",
        from = "Column::MenuItemId",
        to = "super::menu_item::Column::Id",
        on_delete = "Cascade"
    )]
    MenuItem,
    #[sea_orm(has_many = "super::menu_option::Entity")]
    Options,
}

impl Related<super::menu_option::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Options.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
