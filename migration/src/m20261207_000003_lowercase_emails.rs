//! Emails are compared case-insensitively, so they are stored in lower case (an admin looking
//! for `Casey@Example.com` finds `casey@example.com`). An address whose lower-case form another
//! user already has is left as it is rather than merged.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE users SET email = LOWER(email) WHERE email IS NOT NULL \
                 AND email <> LOWER(email) AND NOT EXISTS (SELECT 1 FROM users AS other \
                 WHERE other.id <> users.id AND LOWER(other.email) = LOWER(users.email))",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        // The original case is gone; lower-case addresses are valid addresses.
        Ok(())
    }
}
