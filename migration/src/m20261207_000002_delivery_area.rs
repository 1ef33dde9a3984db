//! A restaurant delivers within a radius of itself. Existing restaurants get 15 km, which
//! covers a city the size of the demo's.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Restaurants::Table)
                    .add_column(
                        ColumnDef::new(Restaurants::DeliveryRadiusM)
                            .integer()
                            .not_null()
                            .default(15_000),
                    )
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Restaurants::Table)
                    .drop_column(Restaurants::DeliveryRadiusM)
                    .take(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    DeliveryRadiusM,
}
