//! How long a restaurant's kitchen usually takes, for the arrival estimates: 20 minutes for
//! existing restaurants until their owners say otherwise.

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
                        ColumnDef::new(Restaurants::PreparationMinutes)
                            .integer()
                            .not_null()
                            .default(20),
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
                    .drop_column(Restaurants::PreparationMinutes)
                    .take(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    PreparationMinutes,
}
