//! Menu categories can be deleted while items ordered in the past still point at them (their
//! order lines keep name and price; the rows stay for history): deleting marks them.

use sea_orm_migration::prelude::*;

use crate::columns;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let deleted = ColumnDef::new(MenuCategories::DeletedAt)
            .timestamp_with_time_zone()
            .null()
            .take();
        columns::add(manager, MenuCategories::Table, deleted).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        columns::drop(manager, MenuCategories::Table, MenuCategories::DeletedAt).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum MenuCategories {
    Table,
    DeletedAt,
}
