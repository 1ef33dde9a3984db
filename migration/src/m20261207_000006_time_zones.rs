//! A restaurant's local time is its IANA time zone (`Europe/Berlin`), with daylight saving
//! time, instead of a fixed UTC offset. Existing restaurants get the zone their offset stands
//! for: 60 or 120 minutes (the demo's Berlin, winter or summer) is `Europe/Berlin`, another
//! whole hour `Etc/GMT±N`, anything else UTC. `utc_offset_minutes` stays, as the offset the
//! zone has now (kept current by the server), for the SQL that needs a number.

use sea_orm_migration::prelude::*;

use crate::columns;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let zone = ColumnDef::new(Restaurants::TimeZone)
            .string_len(64)
            .not_null()
            .default("UTC")
            .take();
        columns::add(manager, Restaurants::Table, zone).await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE restaurants SET time_zone = 'Europe/Berlin' WHERE utc_offset_minutes IN (60, 120)",
        )
        .await?;
        // Etc/GMT signs are inverted: Etc/GMT-3 is three hours ahead of UTC.
        for hours in (-12_i32..=14).filter(|h| *h != 0) {
            let zone = if hours > 0 {
                format!("Etc/GMT-{hours}")
            } else {
                format!("Etc/GMT+{}", -hours)
            };
            db.execute_unprepared(&format!(
                "UPDATE restaurants SET time_zone = '{zone}' WHERE utc_offset_minutes = {} \
                 AND time_zone = 'UTC'",
                hours * 60
            ))
            .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_restaurants_time_zone")
                    .table(Restaurants::Table)
                    .col(Restaurants::TimeZone)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_restaurants_time_zone")
                    .table(Restaurants::Table)
                    .to_owned(),
            )
            .await?;
        columns::drop(manager, Restaurants::Table, Restaurants::TimeZone).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    TimeZone,
}
