//! The order events become the log live updates (and later webhooks) are read from: each
//! row says which version of its order it made and what kind of change it was, so a reader
//! can rebuild the order's state at that version and deliver every change once, in order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(OrderEvents::Table)
                    .add_column(
                        ColumnDef::new(OrderEvents::Version)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OrderEvents::Table)
                    .add_column(
                        ColumnDef::new(OrderEvents::Kind)
                            .string_len(24)
                            .not_null()
                            .default("STATUS_CHANGED"),
                    )
                    .take(),
            )
            .await?;
        // Events recorded before versions were kept: numbered in order per order (a courier's
        // claim made no event then, so for a claimed order the numbers after it are one low).
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE order_events SET version = (SELECT COUNT(*) FROM order_events AS earlier \
                 WHERE earlier.order_id = order_events.order_id AND earlier.id <= order_events.id)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [OrderEvents::Kind, OrderEvents::Version] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OrderEvents::Table)
                        .drop_column(column)
                        .take(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum OrderEvents {
    Table,
    Version,
    Kind,
}
