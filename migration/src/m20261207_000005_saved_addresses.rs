//! Customers keep their delivery addresses, structured, and choose one at checkout; an order
//! keeps a snapshot (its address text and location, and now the notes for the courier).

use sea_orm_migration::{
    prelude::*,
    schema::{big_integer, double, string_len, string_len_null, timestamp_with_time_zone},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Addresses::Table)
                    .col(
                        big_integer(Addresses::Id)
                            .auto_increment()
                            .primary_key()
                            .take(),
                    )
                    .col(big_integer(Addresses::UserId))
                    .col(string_len(Addresses::Label, 50))
                    .col(string_len(Addresses::Street, 200))
                    .col(string_len(Addresses::HouseNumber, 20))
                    .col(string_len(Addresses::PostalCode, 20))
                    .col(string_len(Addresses::City, 100))
                    .col(string_len_null(Addresses::CourierNotes, 300))
                    .col(double(Addresses::Latitude))
                    .col(double(Addresses::Longitude))
                    .col(timestamp_with_time_zone(Addresses::CreatedAt))
                    .col(timestamp_with_time_zone(Addresses::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Addresses::Table, Addresses::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_addresses_user")
                    .table(Addresses::Table)
                    .col(Addresses::UserId)
                    .col(Addresses::Id)
                    .take(),
            )
            .await?;
        let notes = ColumnDef::new(Orders::DeliveryNotes)
            .string_len(300)
            .null()
            .take();
        crate::columns::add(manager, Orders::Table, notes).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::columns::drop(manager, Orders::Table, Orders::DeliveryNotes).await?;
        manager
            .drop_table(Table::drop().table(Addresses::Table).take())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Addresses {
    Table,
    Id,
    UserId,
    Label,
    Street,
    HouseNumber,
    PostalCode,
    City,
    CourierNotes,
    Latitude,
    Longitude,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Orders {
    Table,
    DeliveryNotes,
}
