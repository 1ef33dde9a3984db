//! Menu categories can be deleted while items ordered in the past still point at them (their
//! order lines keep name and price; the rows stay for history): deleting marks them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MenuCategories::Table)
                    .add_column(
                        ColumnDef::new(MenuCategories::DeletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(MenuCategories::Table)
                    .drop_column(MenuCategories::DeletedAt)
                    .take(),
            )
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum MenuCategories {
    Table,
    DeletedAt,
}
