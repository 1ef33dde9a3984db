//! What running subscriptions check their viewer against: when a user's roles last changed
//! (`users.roles_changed_at`, null until they first do), and API tokens by when they were
//! revoked. Each process reads both since its last look, through these indexes.

use sea_orm_migration::{prelude::*, schema::timestamp_with_time_zone_null};

use crate::columns;

#[derive(DeriveMigrationName)]
pub struct Migration;

const USERS_INDEX: &str = "idx_users_roles_changed";
const TOKENS_INDEX: &str = "idx_api_tokens_revoked";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        columns::add(
            manager,
            Users::Table,
            timestamp_with_time_zone_null(Users::RolesChangedAt),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name(USERS_INDEX)
                    .table(Users::Table)
                    .col(Users::RolesChangedAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(TOKENS_INDEX)
                    .table(ApiTokens::Table)
                    .col(ApiTokens::RevokedAt)
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(TOKENS_INDEX)
                    .table(ApiTokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(USERS_INDEX)
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        columns::drop(manager, Users::Table, Users::RolesChangedAt).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    RolesChangedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiTokens {
    Table,
    RevokedAt,
}
