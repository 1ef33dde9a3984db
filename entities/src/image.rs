//! A photo: of a menu item (`kind` `item`), or a restaurant's `logo` or `cover`. The files are
//! in media storage, one per size, named by the upload's SHA-256 (`hash`) and the width.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "images")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub restaurant_id: i64,
    /// The item it shows, for `kind` `item`.
    pub menu_item_id: Option<i64>,
    /// `item`, `logo` or `cover`.
    pub kind: String,
    /// Hex SHA-256 of the uploaded bytes: the stem of its files' keys.
    pub hash: String,
    /// Size of the largest stored variant, in pixels.
    pub width: i32,
    pub height: i32,
    /// Text for people who cannot see it.
    pub alt: String,
    /// The stored sizes: a JSON array of `{width, height, key}`, narrowest first.
    pub variants: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
