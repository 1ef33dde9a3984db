//! `ApiToken`.

use std::sync::Arc;

use async_graphql::{ID, Object};
use entities::api_token;

use crate::{
    auth::Scope,
    graphql::{
        common::Timestamp,
        relay::{GlobalId, NodeKind},
    },
};

/// An integrator's API token. The secret is shown once, when it is created.
#[derive(Clone)]
pub struct ApiToken(pub Arc<api_token::Model>);

/// An integrator's API token. The secret is shown once, when it is created.
#[Object]
impl ApiToken {
    /// Global ID of the token.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::ApiToken, self.0.id)
    }

    /// The name its owner gave it.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The first characters of the secret, to tell tokens apart.
    async fn prefix(&self) -> &str {
        &self.0.token_prefix
    }

    /// What the token may do.
    async fn scopes(&self) -> Vec<Scope> {
        self.0
            .scopes
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().and_then(Scope::parse))
            .collect()
    }

    /// When it was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }

    /// When it stops working; null for never.
    async fn expires_at(&self) -> Option<Timestamp> {
        self.0.expires_at.map(Timestamp)
    }

    /// When it was last used (to the minute); null if never.
    async fn last_used_at(&self) -> Option<Timestamp> {
        self.0.last_used_at.map(Timestamp)
    }

    /// When it was revoked; null while it works.
    async fn revoked_at(&self) -> Option<Timestamp> {
        self.0.revoked_at.map(Timestamp)
    }
}
