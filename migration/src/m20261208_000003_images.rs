//! Photos uploaded for menu items and restaurants (logo, cover): each row names what it shows
//! and the sizes it was re-encoded into; the files themselves are in media storage under
//! content-addressed keys.

use sea_orm_migration::{
    prelude::*,
    schema::{big_integer, big_integer_null, integer, json, string_len, timestamp_with_time_zone},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Images::Table)
                    .col(
                        big_integer(Images::Id)
                            .auto_increment()
                            .primary_key()
                            .take(),
                    )
                    .col(big_integer(Images::RestaurantId))
                    .col(big_integer_null(Images::MenuItemId))
                    .col(string_len(Images::Kind, 10))
                    .col(string_len(Images::Hash, 64))
                    .col(integer(Images::Width))
                    .col(integer(Images::Height))
                    .col(string_len(Images::Alt, 300))
                    .col(json(Images::Variants))
                    .col(timestamp_with_time_zone(Images::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Images::Table, Images::RestaurantId)
                            .to(Restaurants::Table, Restaurants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        for statement in [
            Index::create()
                .name("idx_images_owner")
                .table(Images::Table)
                .col(Images::RestaurantId)
                .col(Images::Kind)
                .col(Images::MenuItemId)
                .take(),
            Index::create()
                .name("idx_images_item")
                .table(Images::Table)
                .col(Images::MenuItemId)
                .take(),
            Index::create()
                .name("idx_images_hash")
                .table(Images::Table)
                .col(Images::Hash)
                .take(),
        ] {
            manager.create_index(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Images::Table).take())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Images {
    Table,
    Id,
    RestaurantId,
    MenuItemId,
    Kind,
    Hash,
    Width,
    Height,
    Alt,
    Variants,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    Id,
}
