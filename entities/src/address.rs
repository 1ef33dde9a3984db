//! A delivery address a customer saved, to choose at checkout.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "addresses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// The customer's name for it ("Home", "Office").
    pub label: String,
    pub street: String,
    pub house_number: String,
    pub postal_code: String,
    pub city: String,
    /// For the courier: floor, door code, where to ring.
    pub courier_notes: Option<String>,
    pub latitude: f64,
    pub longitude: f64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl Model {
    /// The address on one line, as an order keeps it: `Torstrasse 1, 10119 Berlin`.
    pub fn one_line(&self) -> String {
        format!(
            "{} {}, {} {}",
            self.street, self.house_number, self.postal_code, self.city
        )
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
