//! Adding and dropping one column: SQLite's `ALTER TABLE` changes one column per statement,
//! so migrations that change several call these once per column.

use sea_orm_migration::prelude::*;

/// Adds `column` to `table`.
pub(crate) async fn add(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    mut column: ColumnDef,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).add_column(&mut column).take())
        .await
}

/// Drops `column` from `table`.
pub(crate) async fn drop(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    column: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(column).take())
        .await
}
