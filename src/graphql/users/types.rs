//! `User`: the public profile, and private fields for the user and admins.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};
use entities::user;

use crate::{
    auth::{Role, guards::viewer},
    error::{AppError, AppResult},
    graphql::{
        integrations::types::ApiToken,
        relay::{GlobalId, NodeKind},
    },
    services,
};

/// A person using dishpatch. Only the public profile is visible to others.
#[derive(Clone)]
pub struct User(pub Arc<user::Model>);

impl User {
    /// Private fields: `UNAUTHENTICATED` for nobody, `FORBIDDEN` for anyone but the user and
    /// admins.
    fn require_owner(&self, ctx: &Context<'_>) -> AppResult<()> {
        let viewer = ctx
            .data::<crate::auth::Viewer>()
            .map_err(|_| AppError::Unauthenticated)?;
        viewer.require_user()?;
        if viewer.is_self_or_admin(self.0.id) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// A person using dishpatch. Only the public profile is visible to others.
#[Object]
impl User {
    /// Global ID of the user.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::User, self.0.id)
    }

    /// The name the user shows to others.
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    /// Email address. Private: the user and admins only.
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.require_owner(ctx)?;
        Ok(self.0.email.as_deref())
    }

    /// Global roles. Private: the user and admins only.
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        self.require_owner(ctx)?;
        let mut roles: Vec<Role> = Role::of(&self.0).into_iter().collect();
        roles.sort_by_key(|role| role.stored());
        Ok(roles)
    }

    /// The user's API tokens, newest first, revoked ones included. Private: the user and
    /// admins only.
    async fn api_tokens(&self, ctx: &Context<'_>) -> Result<Vec<ApiToken>> {
        self.require_owner(ctx)?;
        let _ = viewer(ctx)?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?;
        Ok(services::api_tokens::list(db, self.0.id)
            .await?
            .into_iter()
            .map(|token| ApiToken(Arc::new(token)))
            .collect())
    }
}
