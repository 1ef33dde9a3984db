//! `viewer`.

use async_graphql::{Context, Object, Result};

use super::types::User;
use crate::auth::guards::viewer;

/// Who is asking.
#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The signed-in user; null for anonymous requests.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(viewer(ctx)?.user().cloned().map(User))
    }
}
