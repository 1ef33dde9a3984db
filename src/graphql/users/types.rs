//! `User`: the public profile.

use std::sync::Arc;

use async_graphql::{ID, Object};
use entities::user;

use crate::graphql::relay::{GlobalId, NodeKind};

/// A person using dishpatch. Only the public profile is visible to others.
#[derive(Clone)]
pub struct User(pub Arc<user::Model>);

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
}
