//! Field guards: a role or a scope required before a resolver runs.

use async_graphql::{Context, Guard, Result};

use super::{Role, Scope, Viewer};
use crate::error::AppError;

/// The viewer of this request (anonymous when the request carried no credential).
pub fn viewer<'a>(ctx: &'a Context<'_>) -> Result<&'a Viewer> {
    ctx.data::<Viewer>()
        .map_err(|_| AppError::Internal(anyhow::anyhow!("no viewer in the request")).into())
}

/// Requires a global role.
pub struct RoleGuard(pub Role);

impl Guard for RoleGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        Ok(viewer(ctx)?.require_role(self.0)?)
    }
}

/// Requires a scope of the credential.
pub struct ScopeGuard(pub Scope);

impl Guard for ScopeGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        Ok(viewer(ctx)?.require_scope(self.0)?)
    }
}

/// Requires a full session (not an API token nor a narrowed token).
pub struct FullSessionGuard;

impl Guard for FullSessionGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        Ok(viewer(ctx)?.require_full_session()?)
    }
}
