//! Webhook endpoints keep what Standard Webhooks needs (a description, a second secret during
//! a rotation, why an endpoint was disabled and since when it fails), and each delivery keeps
//! its message id (the `webhook-id` every retry repeats), its lease (which replica is sending
//! it, until when) and its last attempt's time and latency.

use sea_orm_migration::prelude::*;

use crate::columns;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let webhook_columns = [
            ColumnDef::new(Webhooks::Description)
                .string_len(500)
                .not_null()
                .default("")
                .take(),
            ColumnDef::new(Webhooks::PreviousSecretCiphertext)
                .text()
                .null()
                .take(),
            ColumnDef::new(Webhooks::PreviousSecretExpiresAt)
                .timestamp_with_time_zone()
                .null()
                .take(),
            ColumnDef::new(Webhooks::DisabledReason)
                .string_len(300)
                .null()
                .take(),
            ColumnDef::new(Webhooks::FailingSince)
                .timestamp_with_time_zone()
                .null()
                .take(),
        ];
        for column in webhook_columns {
            columns::add(manager, Webhooks::Table, column).await?;
        }
        let delivery_columns = [
            ColumnDef::new(WebhookDeliveries::MessageId)
                .string_len(64)
                .not_null()
                .default("")
                .take(),
            ColumnDef::new(WebhookDeliveries::LeaseUntil)
                .timestamp_with_time_zone()
                .null()
                .take(),
            ColumnDef::new(WebhookDeliveries::LastAttemptAt)
                .timestamp_with_time_zone()
                .null()
                .take(),
            ColumnDef::new(WebhookDeliveries::LastLatencyMs)
                .integer()
                .null()
                .take(),
        ];
        for column in delivery_columns {
            columns::add(manager, WebhookDeliveries::Table, column).await?;
        }
        // The sender takes the oldest pending delivery of each endpoint: this index finds
        // whether an older one is still pending, and serves `deliveries(status:)`.
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_endpoint_status")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::Id)
                    .take(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_webhook_deliveries_endpoint_status")
                    .table(WebhookDeliveries::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            WebhookDeliveries::MessageId,
            WebhookDeliveries::LeaseUntil,
            WebhookDeliveries::LastAttemptAt,
            WebhookDeliveries::LastLatencyMs,
        ] {
            columns::drop(manager, WebhookDeliveries::Table, column).await?;
        }
        for column in [
            Webhooks::Description,
            Webhooks::PreviousSecretCiphertext,
            Webhooks::PreviousSecretExpiresAt,
            Webhooks::DisabledReason,
            Webhooks::FailingSince,
        ] {
            columns::drop(manager, Webhooks::Table, column).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Webhooks {
    Table,
    Description,
    PreviousSecretCiphertext,
    PreviousSecretExpiresAt,
    DisabledReason,
    FailingSince,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    Status,
    MessageId,
    LeaseUntil,
    LastAttemptAt,
    LastLatencyMs,
}
