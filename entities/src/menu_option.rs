//! One option of a group, with what it adds to the item's price.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "menu_options")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub group_id: i64,
    /// The item of the group, so one item's options are read without the groups.
    pub menu_item_id: i64,
    pub name: String,
    /// Added to the item's price, in minor units of the restaurant's currency (0 or more).
    pub price_delta: i64,
    pub is_available: bool,
    pub position: i32,
    /// The id a point-of-sale system knows it by (`importMenu`); unique per group.
    pub external_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::menu_option_group::Entity",
        from = "Column::GroupId",
        to = "super::menu_option_group::Column::Id",
        on_delete = "Cascade"
    )]
    Group,
}

impl Related<super::menu_option_group::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Group.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
