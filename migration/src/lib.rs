//! Schema migrations of the dishpatch database. One file per schema change; a migration that
//! has landed is never edited, a new one is added instead.

pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261122_000001_create_marketplace;
mod m20261206_000001_event_log;
mod m20261207_000001_webhooks;
mod m20261207_000002_delivery_area;
mod m20261207_000003_lowercase_emails;
mod m20261207_000004_preparation_time;
mod m20261207_000005_saved_addresses;
mod m20261207_000006_time_zones;
mod m20261207_000007_category_deletion;
mod m20261207_000008_restaurant_settings;
mod m20261208_000001_menu_options;
mod m20261208_000002_closures;
mod m20261208_000003_images;
mod m20261209_000001_delivery_retention;
mod m20261210_000001_access_changes;

pub use m20261122_000001_create_marketplace::RATING_MILLI_SQL;

/// Runs dishpatch's migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_marketplace::Migration),
            Box::new(m20261206_000001_event_log::Migration),
            Box::new(m20261207_000001_webhooks::Migration),
            Box::new(m20261207_000002_delivery_area::Migration),
            Box::new(m20261207_000003_lowercase_emails::Migration),
            Box::new(m20261207_000004_preparation_time::Migration),
            Box::new(m20261207_000005_saved_addresses::Migration),
            Box::new(m20261207_000006_time_zones::Migration),
            Box::new(m20261207_000007_category_deletion::Migration),
            Box::new(m20261207_000008_restaurant_settings::Migration),
            Box::new(m20261208_000001_menu_options::Migration),
            Box::new(m20261208_000002_closures::Migration),
            Box::new(m20261208_000003_images::Migration),
            Box::new(m20261209_000001_delivery_retention::Migration),
            Box::new(m20261210_000001_access_changes::Migration),
        ]
    }
}
