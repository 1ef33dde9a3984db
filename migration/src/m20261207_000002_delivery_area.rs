//! A restaurant delivers within a radius of itself. Existing restaurants get 15 km, which
//! covers a city the size of the demo's.

use sea_orm_migration::prelude::*;

use crate::columns;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let radius = ColumnDef::new(Restaurants::DeliveryRadiusM)
            .integer()
            .not_null()
            .default(15_000)
            .take();
        columns::add(manager, Restaurants::Table, radius).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        columns::drop(manager, Restaurants::Table, Restaurants::DeliveryRadiusM).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    DeliveryRadiusM,
}
