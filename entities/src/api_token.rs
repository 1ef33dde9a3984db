//! A long-lived token an integrator uses; only its hash is stored.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// The first characters of the secret, shown so a user can tell tokens apart.
    pub token_prefix: String,
    /// SHA-256 of the secret, hex encoded.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// Granted scopes as a JSON array of strings.
    pub scopes: Json,
    pub expires_at: Option<DateTimeUtc>,
    pub last_used_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

crate::by_position::by_position!(
    id,
    user_id,
    name,
    token_prefix,
    token_hash,
    scopes,
    expires_at,
    last_used_at,
    revoked_at,
    created_at
);

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
