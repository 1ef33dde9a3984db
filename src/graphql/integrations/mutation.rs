//! `createApiToken` and `revokeApiToken`.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::types::ApiToken;
use crate::graphql::common::Timestamp;
use crate::{
    auth::{
        Scope,
        guards::{FullSessionGuard, viewer},
    },
    events::EventBus,
    graphql::{
        payloads::UserError,
        relay::{GlobalId, NodeKind},
    },
    services::api_tokens,
};

/// A new API token.
#[derive(InputObject)]
pub struct CreateApiTokenInput {
    /// A name to recognize it by, 1 to 100 characters.
    pub name: String,
    /// What it may do; at least one.
    pub scopes: Vec<Scope>,
    /// When it stops working; never when null.
    pub expires_at: Option<Timestamp>,
}

/// The created token and its secret.
#[derive(SimpleObject)]
pub struct CreateApiTokenPayload {
    /// The token; null on a user error.
    pub api_token: Option<ApiToken>,
    /// The secret to send as `Authorization: Bearer <secret>`. Shown only this once.
    pub secret: Option<String>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Which token to revoke.
#[derive(InputObject)]
pub struct RevokeApiTokenInput {
    /// The token's ID.
    pub id: ID,
}

/// The revoked token.
#[derive(SimpleObject)]
pub struct RevokeApiTokenPayload {
    /// The token, now revoked; null on a user error.
    pub api_token: Option<ApiToken>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Managing one's own API tokens.
#[derive(Default)]
pub struct ApiTokenMutation;

#[Object]
impl ApiTokenMutation {
    /// Creates an API token for the viewer. Needs a full session: tokens cannot mint tokens.
    #[graphql(guard = "FullSessionGuard")]
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        input: CreateApiTokenInput,
    ) -> Result<CreateApiTokenPayload> {
        let user = viewer(ctx)?.require_user()?.clone();
        let db = ctx.data::<DatabaseConnection>()?;
        let created = api_tokens::create(
            db,
            user.id,
            &input.name,
            &input.scopes,
            input.expires_at.map(|at| at.0),
            Utc::now(),
        )
        .await?;
        Ok(match created {
            Ok((token, secret)) => CreateApiTokenPayload {
                api_token: Some(ApiToken(Arc::new(token))),
                secret: Some(secret),
                user_errors: Vec::new(),
            },
            Err(error) => CreateApiTokenPayload {
                api_token: None,
                secret: None,
                user_errors: vec![error.into()],
            },
        })
    }

    /// Revokes one of the viewer's API tokens; it stops working at once.
    #[graphql(guard = "FullSessionGuard")]
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiTokenInput,
    ) -> Result<RevokeApiTokenPayload> {
        let user = viewer(ctx)?.require_user()?.clone();
        let id = GlobalId::decode_as(&input.id, NodeKind::ApiToken)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(
            match api_tokens::revoke(db, user.id, id, Utc::now()).await? {
                Ok(token) => {
                    // Subscriptions running with it end, on every replica.
                    ctx.data::<EventBus>()?.access_changed().await;
                    RevokeApiTokenPayload {
                        api_token: Some(ApiToken(Arc::new(token))),
                        user_errors: Vec::new(),
                    }
                }
                Err(error) => RevokeApiTokenPayload {
                    api_token: None,
                    user_errors: vec![error.into()],
                },
            },
        )
    }
}
