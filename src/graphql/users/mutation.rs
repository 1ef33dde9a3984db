//! What admins manage: global roles and restaurant staff memberships.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::types::User;
use crate::{
    auth::{
        Role,
        guards::{FullSessionGuard, RoleGuard, viewer},
    },
    events::EventBus,
    graphql::{
        menu::types::load_restaurant,
        payloads::UserError,
        relay::{GlobalId, NodeKind},
        restaurants::types::Restaurant,
    },
    services::users,
};

/// Which role to give or take.
#[derive(InputObject)]
pub struct RoleInput {
    /// The user.
    pub user_id: ID,
    /// The role.
    pub role: Role,
}

/// The result of a role change.
#[derive(SimpleObject)]
pub struct RolePayload {
    /// The user as changed; null when nothing changed because of a user error.
    pub user: Option<User>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Whose membership in which restaurant's staff.
#[derive(InputObject)]
pub struct StaffInput {
    /// The restaurant.
    pub restaurant_id: ID,
    /// The user.
    pub user_id: ID,
}

/// The result of a staff change.
#[derive(SimpleObject)]
pub struct StaffPayload {
    /// The restaurant; null when nothing changed because of a user error.
    pub restaurant: Option<Restaurant>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Admin-only management of users.
#[derive(Default)]
pub struct UserMutation;

impl UserMutation {
    async fn set_role(ctx: &Context<'_>, input: RoleInput, grant: bool) -> Result<RolePayload> {
        let user_id = GlobalId::decode_as(&input.user_id, NodeKind::User)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let actor_id = viewer(ctx)?.require_user()?.id;
        Ok(
            match users::set_role(db, actor_id, user_id, input.role, grant, Utc::now()).await? {
                Ok(user) => {
                    // The user's running subscriptions go on with the new roles.
                    ctx.data::<EventBus>()?.access_changed().await;
                    RolePayload {
                        user: Some(User(Arc::new(user))),
                        user_errors: Vec::new(),
                    }
                }
                Err(error) => RolePayload {
                    user: None,
                    user_errors: vec![error.into()],
                },
            },
        )
    }

    async fn set_staff(ctx: &Context<'_>, input: StaffInput, member: bool) -> Result<StaffPayload> {
        let restaurant_id = GlobalId::decode_as(&input.restaurant_id, NodeKind::Restaurant)?;
        let user_id = GlobalId::decode_as(&input.user_id, NodeKind::User)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(
            match users::set_staff(db, viewer(ctx)?, restaurant_id, user_id, member, Utc::now())
                .await?
            {
                Ok(()) => StaffPayload {
                    restaurant: Some(load_restaurant(ctx, restaurant_id).await?),
                    user_errors: Vec::new(),
                },
                Err(error) => StaffPayload {
                    restaurant: None,
                    user_errors: vec![error.into()],
                },
            },
        )
    }
}

#[Object]
impl UserMutation {
    /// Gives a user a global role. Admins only, with a full session.
    #[graphql(guard = "RoleGuard(Role::Admin).and(FullSessionGuard)")]
    async fn grant_role(&self, ctx: &Context<'_>, input: RoleInput) -> Result<RolePayload> {
        Self::set_role(ctx, input, true).await
    }

    /// Takes a global role from a user. Admins only, with a full session; an admin cannot take
    /// their own `ADMIN` role (`INVALID`), another admin can.
    #[graphql(guard = "RoleGuard(Role::Admin).and(FullSessionGuard)")]
    async fn revoke_role(&self, ctx: &Context<'_>, input: RoleInput) -> Result<RolePayload> {
        Self::set_role(ctx, input, false).await
    }

    /// Makes a user staff of a restaurant (staff see and move its orders, change its menu and
    /// pause its orders). The restaurant's owner, or an admin, with a full session.
    #[graphql(guard = "FullSessionGuard")]
    async fn add_restaurant_staff(
        &self,
        ctx: &Context<'_>,
        input: StaffInput,
    ) -> Result<StaffPayload> {
        Self::set_staff(ctx, input, true).await
    }

    /// Removes a user from a restaurant's staff (not its owner). The restaurant's owner, or an
    /// admin, with a full session.
    #[graphql(guard = "FullSessionGuard")]
    async fn remove_restaurant_staff(
        &self,
        ctx: &Context<'_>,
        input: StaffInput,
    ) -> Result<StaffPayload> {
        Self::set_staff(ctx, input, false).await
    }
}
