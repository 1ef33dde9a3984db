//! The whole marketplace: users and credentials, restaurants and menus, orders and deliveries,
//! reviews, webhooks. Every foreign key and every filter or sort the API offers has an index.

#![allow(
    clippy::wildcard_imports,
    reason = "sea-orm-migration's column helpers are meant to be glob-imported (an expect would be unfulfilled under cfg(test))"
)]

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Rating average in thousandths, in integer arithmetic so both databases agree exactly; the
/// API's rating sort uses this very expression so the index serves it.
pub const RATING_MILLI_SQL: &str =
    "CASE WHEN rating_count = 0 THEN 0 ELSE rating_sum * 1000 / rating_count END";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.create_table(table).await?;
        }
        for index in indexes() {
            manager.create_index(index).await?;
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX idx_restaurants_rating ON restaurants (({RATING_MILLI_SQL}), id)"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables().iter().rev() {
            let name = table
                .get_table_name()
                .expect("every table is named")
                .clone();
            manager
                .drop_table(Table::drop().table(name).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

fn id() -> ColumnDef {
    big_integer(Alias::new("id"))
        .auto_increment()
        .primary_key()
        .take()
}

fn created_at() -> ColumnDef {
    timestamp_with_time_zone(Alias::new("created_at"))
}

fn updated_at() -> ColumnDef {
    timestamp_with_time_zone(Alias::new("updated_at"))
}

fn references(
    from: impl IntoIden,
    column: impl IntoIden,
    to: impl IntoIden,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(from)
        .from_col(column)
        .to_tbl(to)
        .to_col(Alias::new("id"))
        .on_delete(on_delete)
        .take()
}

use ForeignKeyAction::{Cascade, Restrict, SetNull};

fn tables() -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table(Users::Table)
            .col(id())
            .col(string(Users::DisplayName))
            .col(string_null(Users::Email).unique_key())
            .col(json(Users::Roles))
            .col(created_at())
            .col(updated_at())
            .take(),
        Table::create()
            .table(Identities::Table)
            .col(id())
            .col(big_integer(Identities::UserId))
            .col(string(Identities::Provider))
            .col(string(Identities::Subject))
            .col(string_null(Identities::Email))
            .col(created_at())
            .foreign_key(&mut references(
                Identities::Table,
                Identities::UserId,
                Users::Table,
                Cascade,
            ))
            .take(),
        Table::create()
            .table(ApiTokens::Table)
            .col(id())
            .col(big_integer(ApiTokens::UserId))
            .col(string(ApiTokens::Name))
            .col(string(ApiTokens::TokenPrefix))
            .col(string(ApiTokens::TokenHash).unique_key())
            .col(json(ApiTokens::Scopes))
            .col(timestamp_with_time_zone_null(ApiTokens::ExpiresAt))
            .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
            .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
            .col(created_at())
            .foreign_key(&mut references(
                ApiTokens::Table,
                ApiTokens::UserId,
                Users::Table,
                Cascade,
            ))
            .take(),
        Table::create()
            .table(RefreshTokens::Table)
            .col(id())
            .col(big_integer(RefreshTokens::UserId))
            .col(string(RefreshTokens::FamilyId))
            .col(string(RefreshTokens::TokenHash).unique_key())
            .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
            .col(timestamp_with_time_zone_null(RefreshTokens::RotatedAt))
            .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
            .col(created_at())
            .foreign_key(&mut references(
                RefreshTokens::Table,
                RefreshTokens::UserId,
                Users::Table,
                Cascade,
            ))
            .take(),
        Table::create()
            .table(Restaurants::Table)
            .col(id())
            .col(big_integer(Restaurants::OwnerId))
            .col(string(Restaurants::Slug).unique_key())
            .col(string(Restaurants::Name))
            .col(text(Restaurants::Description))
            .col(string(Restaurants::Address))
            .col(double(Restaurants::Latitude))
            .col(double(Restaurants::Longitude))
            .col(integer(Restaurants::UtcOffsetMinutes))
            .col(boolean(Restaurants::IsOpen))
            .col(string_len(Restaurants::Currency, 3))
            .col(big_integer(Restaurants::DeliveryFee))
            .col(big_integer(Restaurants::RatingSum))
            .col(big_integer(Restaurants::RatingCount))
            .col(created_at())
            .col(updated_at())
            .foreign_key(&mut references(
                Restaurants::Table,
                Restaurants::OwnerId,
                Users::Table,
                Restrict,
            ))
            .take(),
        Table::create()
            .table(RestaurantCuisines::Table)
            .col(big_integer(RestaurantCuisines::RestaurantId))
            .col(string(RestaurantCuisines::Cuisine))
            .primary_key(
                Index::create()
                    .col(RestaurantCuisines::RestaurantId)
                    .col(RestaurantCuisines::Cuisine),
            )
            .foreign_key(&mut references(
                RestaurantCuisines::Table,
                RestaurantCuisines::RestaurantId,
                Restaurants::Table,
                Cascade,
            ))
            .take(),
        Table::create()
            .table(OpeningHours::Table)
            .col(big_integer(OpeningHours::RestaurantId))
            .col(integer(OpeningHours::OpensAt))
            .col(integer(OpeningHours::ClosesAt))
            .primary_key(
                Index::create()
                    .col(OpeningHours::RestaurantId)
                    .col(OpeningHours::OpensAt),
            )
            .foreign_key(&mut references(
                OpeningHours::Table,
                OpeningHours::RestaurantId,
                Restaurants::Table,
                Cascade,
            ))
            .take(),
        Table::create()
            .table(RestaurantStaff::Table)
            .col(big_integer(RestaurantStaff::RestaurantId))
            .col(big_integer(RestaurantStaff::UserId))
            .col(created_at())
            .primary_key(
                Index::create()
                    .col(RestaurantStaff::RestaurantId)
                    .col(RestaurantStaff::UserId),
            )
            .foreign_key(&mut references(
                RestaurantStaff::Table,
                RestaurantStaff::RestaurantId,
                Restaurants::Table,
                Cascade,
            ))
            .foreign_key(&mut references(
                RestaurantStaff::Table,
                RestaurantStaff::UserId,
                Users::Table,
                Cascade,
            ))
            .take(),
        Table::create()
            .table(MenuCategories::Table)
            .col(id())
            .col(big_integer(MenuCategories::RestaurantId))
            .col(string(MenuCategories::Name))
            .col(integer(MenuCategories::Position))
            .col(created_at())
            .foreign_key(&mut references(
                MenuCategories::Table,
                MenuCategories::RestaurantId,
                Restaurants::Table,
                Cascade,
            ))
            .take(),
        Table::create()
            .table(MenuItems::Table)
            .col(id())
            .col(big_integer(MenuItems::RestaurantId))
            .col(big_integer(MenuItems::CategoryId))
            .col(string(MenuItems::Name))
            .col(text(MenuItems::Description))
            .col(big_integer(MenuItems::PriceAmount))
            .col(string_len(MenuItems::Currency, 3))
            .col(boolean(MenuItems::IsAvailable))
            .col(json(MenuItems::DietaryTags))
            .col(string_null(MenuItems::ImageUrl))
            .col(integer(MenuItems::Position))
            .col(timestamp_with_time_zone_null(MenuItems::DeletedAt))
            .col(created_at())
            .col(updated_at())
            .foreign_key(&mut references(
                MenuItems::Table,
                MenuItems::RestaurantId,
                Restaurants::Table,
                Cascade,
            ))
            .foreign_key(&mut references(
                MenuItems::Table,
                MenuItems::CategoryId,
                MenuCategories::Table,
                Restrict,
            ))
            .take(),
        Table::create()
            .table(Orders::Table)
            .col(id())
            .col(big_integer(Orders::CustomerId))
            .col(big_integer(Orders::RestaurantId))
            .col(string_len(Orders::Status, 24))
            .col(big_integer(Orders::Subtotal))
            .col(big_integer(Orders::DeliveryFee))
            .col(big_integer(Orders::Total))
            .col(string_len(Orders::Currency, 3))
            .col(string(Orders::DeliveryAddress))
            .col(double(Orders::DeliveryLatitude))
            .col(double(Orders::DeliveryLongitude))
            .col(string(Orders::IdempotencyKey))
            .col(string(Orders::RequestFingerprint))
            .col(integer(Orders::Version))
            .col(created_at())
            .col(updated_at())
            .foreign_key(&mut references(
                Orders::Table,
                Orders::CustomerId,
                Users::Table,
                Restrict,
            ))
            .foreign_key(&mut references(
                Orders::Table,
                Orders::RestaurantId,
                Restaurants::Table,
                Restrict,
            ))
            .take(),
        Table::create()
            .table(OrderItems::Table)
            .col(id())
            .col(big_integer(OrderItems::OrderId))
            .col(big_integer(OrderItems::MenuItemId))
            .col(string(OrderItems::Name))
            .col(big_integer(OrderItems::UnitPrice))
            .col(integer(OrderItems::Quantity))
            .col(string_null(OrderItems::Note))
            .foreign_key(&mut references(
                OrderItems::Table,
                OrderItems::OrderId,
                Orders::Table,
                Cascade,
            ))
            .foreign_key(&mut references(
                OrderItems::Table,
                OrderItems::MenuItemId,
                MenuItems::Table,
                Restrict,
            ))
            .take(),
        Table::create()
            .table(OrderEvents::Table)
            .col(id())
            .col(big_integer(OrderEvents::OrderId))
            .col(big_integer_null(OrderEvents::ActorId))
            .col(string_len_null(OrderEvents::FromStatus, 24))
            .col(string_len(OrderEvents::ToStatus, 24))
            .col(text_null(OrderEvents::Reason))
            .col(created_at())
            .foreign_key(&mut references(
                OrderEvents::Table,
                OrderEvents::OrderId,
                Orders::Table,
                Cascade,
            ))
            .foreign_key(&mut references(
                OrderEvents::Table,
                OrderEvents::ActorId,
                Users::Table,
                SetNull,
            ))
            .take(),
        Table::create()
            .table(Deliveries::Table)
            .col(id())
            .col(big_integer(Deliveries::OrderId).unique_key())
            .col(big_integer(Deliveries::CourierId))
            .col(string_len(Deliveries::Status, 24))
            .col(double_null(Deliveries::LastLatitude))
            .col(double_null(Deliveries::LastLongitude))
            .col(timestamp_with_time_zone_null(Deliveries::LocationUpdatedAt))
            .col(timestamp_with_time_zone(Deliveries::ClaimedAt))
            .col(timestamp_with_time_zone_null(Deliveries::PickedUpAt))
            .col(timestamp_with_time_zone_null(Deliveries::DeliveredAt))
            .foreign_key(&mut references(
                Deliveries::Table,
                Deliveries::OrderId,
                Orders::Table,
                Cascade,
            ))
            .foreign_key(&mut references(
                Deliveries::Table,
                Deliveries::CourierId,
                Users::Table,
                Restrict,
            ))
            .take(),
        Table::create()
            .table(Reviews::Table)
            .col(id())
            .col(big_integer(Reviews::OrderId).unique_key())
            .col(big_integer(Reviews::RestaurantId))
            .col(big_integer(Reviews::AuthorId))
            .col(
                integer(Reviews::Rating).check(
                    Expr::col(Reviews::Rating)
                        .gte(1)
                        .and(Expr::col(Reviews::Rating).lte(5)),
                ),
            )
            .col(text(Reviews::Body))
            .col(created_at())
            .foreign_key(&mut references(
                Reviews::Table,
                Reviews::OrderId,
                Orders::Table,
                Cascade,
            ))
            .foreign_key(&mut references(
                Reviews::Table,
                Reviews::RestaurantId,
                Restaurants::Table,
                Cascade,
            ))
            .foreign_key(&mut references(
                Reviews::Table,
                Reviews::AuthorId,
                Users::Table,
                Restrict,
            ))
            .take(),
        Table::create()
            .table(Webhooks::Table)
            .col(id())
            .col(big_integer(Webhooks::UserId))
            .col(big_integer_null(Webhooks::RestaurantId))
            .col(string(Webhooks::Url))
            .col(json(Webhooks::Events))
            .col(text(Webhooks::SecretCiphertext))
            .col(boolean(Webhooks::IsActive))
            .col(created_at())
            .foreign_key(&mut references(
                Webhooks::Table,
                Webhooks::UserId,
                Users::Table,
                Cascade,
            ))
            .foreign_key(&mut references(
                Webhooks::Table,
                Webhooks::RestaurantId,
                Restaurants::Table,
                Cascade,
            ))
            .take(),
        Table::create()
            .table(WebhookDeliveries::Table)
            .col(id())
            .col(big_integer(WebhookDeliveries::WebhookId))
            .col(string(WebhookDeliveries::EventType))
            .col(json(WebhookDeliveries::Payload))
            .col(string_len(WebhookDeliveries::Status, 16))
            .col(integer(WebhookDeliveries::Attempts))
            .col(timestamp_with_time_zone_null(
                WebhookDeliveries::NextAttemptAt,
            ))
            .col(integer_null(WebhookDeliveries::LastStatusCode))
            .col(text_null(WebhookDeliveries::LastError))
            .col(created_at())
            .col(timestamp_with_time_zone_null(
                WebhookDeliveries::DeliveredAt,
            ))
            .foreign_key(&mut references(
                WebhookDeliveries::Table,
                WebhookDeliveries::WebhookId,
                Webhooks::Table,
                Cascade,
            ))
            .take(),
    ]
}

fn index<T: IntoIden + Copy + 'static>(
    name: &str,
    table: T,
    columns: &[&'static str],
) -> IndexCreateStatement {
    let mut statement = Index::create().name(name).table(table).take();
    for column in columns {
        statement.col(Alias::new(*column));
    }
    statement
}

fn unique<T: IntoIden + Copy + 'static>(
    name: &str,
    table: T,
    columns: &[&'static str],
) -> IndexCreateStatement {
    index(name, table, columns).unique().take()
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        unique(
            "uq_identities_provider_subject",
            Identities::Table,
            &["provider", "subject"],
        ),
        index("idx_identities_user", Identities::Table, &["user_id"]),
        index("idx_api_tokens_user", ApiTokens::Table, &["user_id"]),
        index(
            "idx_refresh_tokens_user",
            RefreshTokens::Table,
            &["user_id"],
        ),
        index(
            "idx_refresh_tokens_family",
            RefreshTokens::Table,
            &["family_id"],
        ),
        index("idx_restaurants_owner", Restaurants::Table, &["owner_id"]),
        index("idx_restaurants_name", Restaurants::Table, &["name", "id"]),
        index(
            "idx_restaurants_location",
            Restaurants::Table,
            &["latitude", "longitude"],
        ),
        index(
            "idx_restaurant_cuisines_cuisine",
            RestaurantCuisines::Table,
            &["cuisine", "restaurant_id"],
        ),
        index(
            "idx_restaurant_staff_user",
            RestaurantStaff::Table,
            &["user_id"],
        ),
        index(
            "idx_menu_categories_restaurant",
            MenuCategories::Table,
            &["restaurant_id", "position"],
        ),
        index(
            "idx_menu_items_restaurant",
            MenuItems::Table,
            &["restaurant_id", "position"],
        ),
        index(
            "idx_menu_items_category",
            MenuItems::Table,
            &["category_id", "position"],
        ),
        unique(
            "uq_orders_customer_idempotency_key",
            Orders::Table,
            &["customer_id", "idempotency_key"],
        ),
        index("idx_orders_customer", Orders::Table, &["customer_id", "id"]),
        index(
            "idx_orders_customer_status",
            Orders::Table,
            &["customer_id", "status", "id"],
        ),
        index(
            "idx_orders_restaurant",
            Orders::Table,
            &["restaurant_id", "id"],
        ),
        index(
            "idx_orders_restaurant_status",
            Orders::Table,
            &["restaurant_id", "status", "id"],
        ),
        index("idx_orders_status", Orders::Table, &["status", "id"]),
        index("idx_order_items_order", OrderItems::Table, &["order_id"]),
        index(
            "idx_order_items_menu_item",
            OrderItems::Table,
            &["menu_item_id"],
        ),
        index(
            "idx_order_events_order",
            OrderEvents::Table,
            &["order_id", "id"],
        ),
        index("idx_order_events_actor", OrderEvents::Table, &["actor_id"]),
        index(
            "idx_deliveries_courier",
            Deliveries::Table,
            &["courier_id", "status"],
        ),
        index(
            "idx_reviews_restaurant",
            Reviews::Table,
            &["restaurant_id", "created_at", "id"],
        ),
        index("idx_reviews_author", Reviews::Table, &["author_id"]),
        index("idx_webhooks_user", Webhooks::Table, &["user_id"]),
        index(
            "idx_webhooks_restaurant",
            Webhooks::Table,
            &["restaurant_id"],
        ),
        index(
            "idx_webhook_deliveries_webhook",
            WebhookDeliveries::Table,
            &["webhook_id", "id"],
        ),
        index(
            "idx_webhook_deliveries_due",
            WebhookDeliveries::Table,
            &["status", "next_attempt_at"],
        ),
    ]
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    DisplayName,
    Email,
    Roles,
}

#[derive(DeriveIden, Clone, Copy)]
enum Identities {
    Table,
    UserId,
    Provider,
    Subject,
    Email,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiTokens {
    Table,
    UserId,
    Name,
    TokenPrefix,
    TokenHash,
    Scopes,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RefreshTokens {
    Table,
    UserId,
    FamilyId,
    TokenHash,
    ExpiresAt,
    RotatedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Restaurants {
    Table,
    OwnerId,
    Slug,
    Name,
    Description,
    Address,
    Latitude,
    Longitude,
    UtcOffsetMinutes,
    IsOpen,
    Currency,
    DeliveryFee,
    RatingSum,
    RatingCount,
}

#[derive(DeriveIden, Clone, Copy)]
enum RestaurantCuisines {
    Table,
    RestaurantId,
    Cuisine,
}

#[derive(DeriveIden, Clone, Copy)]
enum OpeningHours {
    Table,
    RestaurantId,
    OpensAt,
    ClosesAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RestaurantStaff {
    Table,
    RestaurantId,
    UserId,
}

#[derive(DeriveIden, Clone, Copy)]
enum MenuCategories {
    Table,
    RestaurantId,
    Name,
    Position,
}

#[derive(DeriveIden, Clone, Copy)]
enum MenuItems {
    Table,
    RestaurantId,
    CategoryId,
    Name,
    Description,
    PriceAmount,
    Currency,
    IsAvailable,
    DietaryTags,
    ImageUrl,
    Position,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Orders {
    Table,
    CustomerId,
    RestaurantId,
    Status,
    Subtotal,
    DeliveryFee,
    Total,
    Currency,
    DeliveryAddress,
    DeliveryLatitude,
    DeliveryLongitude,
    IdempotencyKey,
    RequestFingerprint,
    Version,
}

#[derive(DeriveIden, Clone, Copy)]
enum OrderItems {
    Table,
    OrderId,
    MenuItemId,
    Name,
    UnitPrice,
    Quantity,
    Note,
}

#[derive(DeriveIden, Clone, Copy)]
enum OrderEvents {
    Table,
    OrderId,
    ActorId,
    FromStatus,
    ToStatus,
    Reason,
}

#[derive(DeriveIden, Clone, Copy)]
enum Deliveries {
    Table,
    OrderId,
    CourierId,
    Status,
    LastLatitude,
    LastLongitude,
    LocationUpdatedAt,
    ClaimedAt,
    PickedUpAt,
    DeliveredAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Reviews {
    Table,
    OrderId,
    RestaurantId,
    AuthorId,
    Rating,
    Body,
}

#[derive(DeriveIden, Clone, Copy)]
enum Webhooks {
    Table,
    UserId,
    RestaurantId,
    Url,
    Events,
    SecretCiphertext,
    IsActive,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    WebhookId,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LastStatusCode,
    LastError,
    DeliveredAt,
}
