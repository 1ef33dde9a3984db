//! Restaurants close on dated days (holidays, a private party) besides their weekly hours, and
//! give a phone number.

use sea_orm_migration::{
    prelude::*,
    schema::{big_integer, date, string_len, timestamp_with_time_zone},
};

use crate::columns;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RestaurantClosures::Table)
                    .col(
                        big_integer(RestaurantClosures::Id)
                            .auto_increment()
                            .primary_key()
                            .take(),
                    )
                    .col(big_integer(RestaurantClosures::RestaurantId))
                    .col(date(RestaurantClosures::StartsOn))
                    .col(date(RestaurantClosures::EndsOn))
                    .col(string_len(RestaurantClosures::Reason, 200))
                    .col(timestamp_with_time_zone(RestaurantClosures::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RestaurantClosures::Table, RestaurantClosures::RestaurantId)
                            .to(Restaurants::Table, Restaurants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_restaurant_closures_restaurant")
                    .table(RestaurantClosures::Table)
                    .col(RestaurantClosures::RestaurantId)
                    .col(RestaurantClosures::EndsOn)
                    .take(),
            )
            .await?;
        let phone = ColumnDef::new(Restaurants::Phone)
            .string_len(40)
            .null()
            .take();
        columns::add(manager, Restaurants::Table, phone).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        columns::drop(manager, Restaurants::Table, Restaurants::Phone).await?;
        manager
            .drop_table(Table::drop().table(RestaurantClosures::Table).take())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum RestaurantClosures {
    Table,
    Id,
    RestaurantId,
    StartsOn,
    EndsOn,
    Reason,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    Id,
    Phone,
}
