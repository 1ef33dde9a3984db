//! A person: customer, courier, admin, restaurant staff (through `restaurant_staff`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub display_name: String,
    #[sea_orm(unique)]
    pub email: Option<String>,
    /// Global roles as a JSON array of strings (`customer`, `courier`, `admin`).
    pub roles: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When `roles` last changed; null until they first do. Strictly later with each change,
    /// so a copy of the user read earlier can tell it is older.
    pub roles_changed_at: Option<DateTimeUtc>,
}

crate::by_position::by_position!(
    id,
    display_name,
    email,
    roles,
    created_at,
    updated_at,
    roles_changed_at
);

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::identity::Entity")]
    Identities,
    #[sea_orm(has_many = "super::api_token::Entity")]
    ApiTokens,
    #[sea_orm(has_many = "super::review::Entity")]
    Reviews,
    #[sea_orm(has_many = "super::order::Entity")]
    Orders,
}

impl Related<super::identity::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Identities.def()
    }
}

impl Related<super::api_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::ApiTokens.def()
    }
}

impl Related<super::review::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Reviews.def()
    }
}

impl Related<super::order::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Orders.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
