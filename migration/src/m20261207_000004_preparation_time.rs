//! How long a restaurant's kitchen usually takes, for the arrival estimates: 20 minutes for
//! existing restaurants until their owners say otherwise.

use sea_orm_migration::prelude::*;

use crate::columns;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let minutes = ColumnDef::new(Restaurants::PreparationMinutes)
            .integer()
            .not_null()
            .default(20)
            .take();
        columns::add(manager, Restaurants::Table, minutes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        columns::drop(manager, Restaurants::Table, Restaurants::PreparationMinutes).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    PreparationMinutes,
}
