//! A dish or drink on a menu. Deleting one only sets `deleted_at`, so past orders keep it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "menu_items")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub restaurant_id: i64,
    pub category_id: i64,
    pub name: String,
    pub description: String,
    /// Price in minor units of `currency` (cents for EUR).
    pub price_amount: i64,
    pub currency: String,
    pub is_available: bool,
    /// Dietary tags as a JSON array of strings (`vegan`, `gluten_free`, ...).
    pub dietary_tags: Json,
    pub image_url: Option<String>,
    pub position: i32,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The id a point-of-sale system knows it by (`importMenu`); unique per restaurant.
    pub external_id: Option<String>,
    /// Allergens as a JSON array of strings (`gluten`, `milk`, ...; the EU's fourteen).
    pub allergens: Json,
}

crate::by_position::by_position!(
    id,
    restaurant_id,
    category_id,
    name,
    description,
    price_amount,
    currency,
    is_available,
    dietary_tags,
    image_url,
    position,
    deleted_at,
    created_at,
    updated_at,
    external_id,
    allergens
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
    #[sea_orm(
        belongs_to = "super::menu_category::Entity",
        from = "Column::CategoryId",
        to = "super::menu_category::Column::Id"
    )]
    Category,
}

impl Related<super::restaurant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Restaurant.def()
    }
}

impl Related<super::menu_category::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Category.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
