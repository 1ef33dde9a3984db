//! Restaurants set a minimum order, and can pause taking orders until a given time.

use sea_orm_migration::prelude::*;

use crate::columns;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let minimum = ColumnDef::new(Restaurants::MinimumOrder)
            .big_integer()
            .not_null()
            .default(0)
            .take();
        columns::add(manager, Restaurants::Table, minimum).await?;
        let paused = ColumnDef::new(Restaurants::PausedUntil)
            .timestamp_with_time_zone()
            .null()
            .take();
        columns::add(manager, Restaurants::Table, paused).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Restaurants::PausedUntil, Restaurants::MinimumOrder] {
            columns::drop(manager, Restaurants::Table, column).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    MinimumOrder,
    PausedUntil,
}
