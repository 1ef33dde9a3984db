//! `User`: the public profile, and private fields for the user and admins.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};
use entities::user;

use crate::{
    auth::{Role, guards::viewer},
    error::{AppError, AppResult},
    graphql::{
        integrations::types::ApiToken,
        loaders::Loaders,
        orders::types::{DeliveryConnection, OrderConnection, OrderOwner, OrderStatus},
        relay::{GlobalId, NodeKind, PageArgs},
        restaurants::types::{Restaurant, RestaurantMembership, StaffRole},
    },
    services,
};

/// A person using dishpatch. Only the public profile is visible to others.
#[derive(Clone)]
pub struct User(pub Arc<user::Model>);

impl User {
    /// Private fields a token scope covers (orders, deliveries, webhook endpoints; the field
    /// checks the scope): `UNAUTHENTICATED` for nobody, `FORBIDDEN` for anyone but the user
    /// and admins.
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

    /// Personal data no scope covers (email, roles, memberships, addresses, API tokens): as
    /// `require_owner`, but an admin only in a full session (`Viewer::may_read_private_of`).
    fn require_private(&self, ctx: &Context<'_>) -> AppResult<()> {
        ctx.data::<crate::auth::Viewer>()
            .map_err(|_| AppError::Unauthenticated)?
            .may_read_private_of(self.0.id)
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

    /// Email address. Private: the user, and admins in a full session (not a token).
    async fn email(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        self.require_private(ctx)?;
        Ok(self.0.email.as_deref())
    }

    /// Global roles. Private: the user, and admins in a full session (not a token).
    async fn roles(&self, ctx: &Context<'_>) -> Result<Vec<Role>> {
        self.require_private(ctx)?;
        let mut roles: Vec<Role> = Role::of(&self.0).into_iter().collect();
        roles.sort_by_key(|role| role.stored());
        Ok(roles)
    }

    /// The user's orders, newest first. Private: the user and admins only; tokens need
    /// `orders:read`.
    #[graphql(
        complexity = "crate::graphql::relay::connection_cost(first, last, 20, child_complexity)"
    )]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only orders in this status.")] status: Option<OrderStatus>,
        #[graphql(desc = "Orders after this cursor, with `first`.")] after: Option<String>,
        #[graphql(desc = "Orders before this cursor, with `last`.")] before: Option<String>,
        #[graphql(desc = "How many from the newest, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "How many from the oldest, at most 100.")] last: Option<i32>,
    ) -> Result<OrderConnection> {
        self.require_owner(ctx)?;
        viewer(ctx)?.require_scope(crate::auth::Scope::OrdersRead)?;
        let args = PageArgs::new(first, after, last, before, 20)?;
        OrderConnection::load(ctx, OrderOwner::Customer(self.0.id), status, args).await
    }

    /// The deliveries the user took as a courier: active ones (claimed, picked up) first, then
    /// the rest (delivered, or cancelled after the claim), each newest first, so a courier app
    /// that restarts finds its current delivery first. Private: the user and admins only;
    /// tokens need `orders:read`.
    #[graphql(
        complexity = "crate::graphql::relay::connection_cost(first, last, 20, child_complexity)"
    )]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Deliveries after this cursor, with `first`.")] after: Option<String>,
        #[graphql(desc = "Deliveries before this cursor, with `last`.")] before: Option<String>,
        #[graphql(desc = "How many from the start, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "How many from the end, at most 100.")] last: Option<i32>,
    ) -> Result<DeliveryConnection> {
        self.require_owner(ctx)?;
        viewer(ctx)?.require_scope(crate::auth::Scope::OrdersRead)?;
        let args = PageArgs::new(first, after, last, before, 20)?;
        DeliveryConnection::load(ctx, self.0.id, args).await
    }

    /// The restaurants the user works at, by name: those they own and those whose staff they
    /// are, each with the role. Where a restaurant dashboard starts after signing in. Private:
    /// the user, and admins in a full session (not a token).
    async fn restaurants(&self, ctx: &Context<'_>) -> Result<Vec<RestaurantMembership>> {
        self.require_private(ctx)?;
        let places = ctx
            .data::<Loaders>()?
            .workplaces
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        Ok(places
            .iter()
            .map(|(restaurant, owner)| RestaurantMembership {
                restaurant: Restaurant::from(restaurant.clone()),
                role: if *owner {
                    StaffRole::Owner
                } else {
                    StaffRole::Staff
                },
            })
            .collect())
    }

    /// The user's saved delivery addresses, oldest first. Private: the user, and admins in a
    /// full session (not a token).
    async fn addresses(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<crate::graphql::users::addresses::Address>> {
        self.require_private(ctx)?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?;
        Ok(Box::pin(services::addresses::list(db, self.0.id))
            .await?
            .into_iter()
            .map(|saved| crate::graphql::users::addresses::Address(Arc::new(saved)))
            .collect())
    }

    /// The user's webhook endpoints, newest first. Private: the user and admins only; tokens
    /// need `webhooks:write`.
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Vec<crate::graphql::integrations::webhooks::WebhookEndpoint>> {
        self.require_owner(ctx)?;
        viewer(ctx)?.require_scope(crate::auth::Scope::WebhooksWrite)?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?;
        Ok(Box::pin(services::webhooks::list(db, self.0.id))
            .await?
            .into_iter()
            .map(|endpoint| {
                crate::graphql::integrations::webhooks::WebhookEndpoint(Arc::new(endpoint))
            })
            .collect())
    }

    /// The user's API tokens, newest first, revoked ones included. Private: the user, and
    /// admins in a full session (not a token).
    async fn api_tokens(&self, ctx: &Context<'_>) -> Result<Vec<ApiToken>> {
        self.require_private(ctx)?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?;
        Ok(Box::pin(services::api_tokens::list(db, self.0.id))
            .await?
            .into_iter()
            .map(|token| ApiToken(Arc::new(token)))
            .collect())
    }
}
