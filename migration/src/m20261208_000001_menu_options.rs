//! Option groups on menu items ("Size": exactly one of …; "Extras": up to three of …), the
//! options an order line was placed with, and the external ids a point-of-sale system keys
//! its menu by (`importMenu`); items list their allergens.

use sea_orm_migration::{
    prelude::*,
    schema::{
        big_integer, boolean, integer, string_len, string_len_null, timestamp_with_time_zone,
    },
};

use crate::columns;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MenuOptionGroups::Table)
                    .col(
                        big_integer(MenuOptionGroups::Id)
                            .auto_increment()
                            .primary_key()
                            .take(),
                    )
                    .col(big_integer(MenuOptionGroups::RestaurantId))
                    .col(big_integer(MenuOptionGroups::MenuItemId))
                    .col(string_len(MenuOptionGroups::Name, 100))
                    .col(integer(MenuOptionGroups::MinChoices))
                    .col(integer(MenuOptionGroups::MaxChoices))
                    .col(integer(MenuOptionGroups::Position))
                    .col(string_len_null(MenuOptionGroups::ExternalId, 100))
                    .col(timestamp_with_time_zone(MenuOptionGroups::CreatedAt))
                    .col(timestamp_with_time_zone(MenuOptionGroups::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MenuOptionGroups::Table, MenuOptionGroups::RestaurantId)
                            .to(Restaurants::Table, Restaurants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MenuOptionGroups::Table, MenuOptionGroups::MenuItemId)
                            .to(MenuItems::Table, MenuItems::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MenuOptions::Table)
                    .col(
                        big_integer(MenuOptions::Id)
                            .auto_increment()
                            .primary_key()
                            .take(),
                    )
                    .col(big_integer(MenuOptions::GroupId))
                    .col(big_integer(MenuOptions::MenuItemId))
                    .col(string_len(MenuOptions::Name, 100))
                    .col(big_integer(MenuOptions::PriceDelta))
                    .col(boolean(MenuOptions::IsAvailable))
                    .col(integer(MenuOptions::Position))
                    .col(string_len_null(MenuOptions::ExternalId, 100))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MenuOptions::Table, MenuOptions::GroupId)
                            .to(MenuOptionGroups::Table, MenuOptionGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        // The browse loaders read groups and options by item, in menu order.
        for statement in [
            Index::create()
                .name("idx_option_groups_item")
                .table(MenuOptionGroups::Table)
                .col(MenuOptionGroups::MenuItemId)
                .col(MenuOptionGroups::Position)
                .col(MenuOptionGroups::Id)
                .take(),
            Index::create()
                .name("idx_options_item")
                .table(MenuOptions::Table)
                .col(MenuOptions::MenuItemId)
                .col(MenuOptions::GroupId)
                .col(MenuOptions::Position)
                .col(MenuOptions::Id)
                .take(),
            Index::create()
                .name("idx_options_group")
                .table(MenuOptions::Table)
                .col(MenuOptions::GroupId)
                .take(),
            Index::create()
                .name("uq_option_groups_external")
                .table(MenuOptionGroups::Table)
                .col(MenuOptionGroups::MenuItemId)
                .col(MenuOptionGroups::ExternalId)
                .unique()
                .take(),
            Index::create()
                .name("uq_options_external")
                .table(MenuOptions::Table)
                .col(MenuOptions::GroupId)
                .col(MenuOptions::ExternalId)
                .unique()
                .take(),
        ] {
            manager.create_index(statement).await?;
        }
        for table in [MenuTable::Categories, MenuTable::Items] {
            let column = ColumnDef::new(Columns::ExternalId)
                .string_len(100)
                .null()
                .take();
            columns::add(manager, table, column).await?;
            manager
                .create_index(
                    Index::create()
                        .name(match table {
                            MenuTable::Categories => "uq_menu_categories_external",
                            MenuTable::Items => "uq_menu_items_external",
                        })
                        .table(table)
                        .col(Columns::RestaurantId)
                        .col(Columns::ExternalId)
                        .unique()
                        .take(),
                )
                .await?;
        }
        let allergens = ColumnDef::new(Columns::Allergens)
            .json()
            .not_null()
            .default("[]")
            .take();
        columns::add(manager, MenuTable::Items, allergens).await?;
        let options = ColumnDef::new(OrderItems::Options)
            .json()
            .not_null()
            .default("[]")
            .take();
        columns::add(manager, OrderItems::Table, options).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        columns::drop(manager, OrderItems::Table, OrderItems::Options).await?;
        columns::drop(manager, MenuTable::Items, Columns::Allergens).await?;
        for (table, index) in [
            (MenuTable::Items, "uq_menu_items_external"),
            (MenuTable::Categories, "uq_menu_categories_external"),
        ] {
            manager
                .drop_index(Index::drop().name(index).table(table).to_owned())
                .await?;
            columns::drop(manager, table, Columns::ExternalId).await?;
        }
        manager
            .drop_table(Table::drop().table(MenuOptions::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(MenuOptionGroups::Table).take())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum MenuOptionGroups {
    Table,
    Id,
    RestaurantId,
    MenuItemId,
    Name,
    MinChoices,
    MaxChoices,
    Position,
    ExternalId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum MenuOptions {
    Table,
    Id,
    GroupId,
    MenuItemId,
    Name,
    PriceDelta,
    IsAvailable,
    Position,
    ExternalId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum MenuItems {
    Table,
    Id,
}

#[derive(Clone, Copy)]
enum MenuTable {
    Categories,
    Items,
}

impl Iden for MenuTable {
    fn unquoted(&self) -> &str {
        match self {
            Self::Categories => "menu_categories",
            Self::Items => "menu_items",
        }
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Columns {
    RestaurantId,
    ExternalId,
    Allergens,
}

#[derive(DeriveIden, Clone, Copy)]
enum OrderItems {
    Table,
    Options,
}
