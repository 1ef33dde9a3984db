//! Restaurants set a minimum order, and can pause taking orders until a given time.

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
                        ColumnDef::new(Restaurants::MinimumOrder)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Restaurants::Table)
                    .add_column(
                        ColumnDef::new(Restaurants::PausedUntil)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Restaurants::PausedUntil, Restaurants::MinimumOrder] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Restaurants::Table)
                        .drop_column(column)
                        .take(),
                )
                .await?;
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
