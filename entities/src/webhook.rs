//! An integrator's HTTPS endpoint that receives signed event notifications.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// Limits the webhook to one restaurant's events; `None` for the user's own orders.
    pub restaurant_id: Option<i64>,
    pub url: String,
    /// Subscribed event types as a JSON array of strings.
    pub events: Json,
    /// Signing secret, encrypted with the server's key (never stored in clear).
    pub secret_ciphertext: String,
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub description: String,
    /// The secret before the last rotation, still signing alongside the new one until
    /// `previous_secret_expires_at`.
    pub previous_secret_ciphertext: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// Why the endpoint stopped receiving (set when deliveries failed for too long).
    pub disabled_reason: Option<String>,
    /// Since when every attempt failed; none after a success.
    pub failing_since: Option<DateTimeUtc>,
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
    #[sea_orm(
        belongs_to = "super::restaurant::Entity",
        from = "Column::RestaurantId",
        to = "super::restaurant::Column::Id",
        on_delete = "Cascade"
    )]
    Restaurant,
    #[sea_orm(has_many = "super::webhook_delivery::Entity")]
    Deliveries,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl Related<super::restaurant::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Restaurant.def()
    }
}

impl Related<super::webhook_delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Deliveries.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
