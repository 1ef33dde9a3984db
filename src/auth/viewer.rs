//! The `Viewer`: who is asking, resolved once per request from its credential.

use std::{collections::HashSet, sync::Arc};

use async_graphql::Enum;
use chrono::{DateTime, Utc};
use entities::{restaurant_staff, user};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::{
    oauth::ExternalTokens,
    secrets::API_TOKEN_PREFIX,
    tokens::{AccessTokens, TokenError},
};
use crate::{
    error::{AppError, AppResult},
    services,
};

/// A global role. Restaurant staff is a membership per restaurant, not a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum)]
pub enum Role {
    /// Orders food.
    Customer,
    /// Delivers orders.
    Courier,
    /// Manages users, roles and restaurants.
    Admin,
}

impl Role {
    /// The stored form (`users.roles`).
    pub fn stored(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Courier => "courier",
            Self::Admin => "admin",
        }
    }

    /// Reads a stored role; unknown ones are ignored by callers.
    pub fn from_stored(value: &str) -> Option<Self> {
        [Self::Customer, Self::Courier, Self::Admin]
            .into_iter()
            .find(|role| role.stored() == value)
    }

    /// The roles stored on `user`.
    pub fn of(user: &user::Model) -> HashSet<Self> {
        Self::of_stored(&user.roles)
    }

    /// The roles in a stored `users.roles` value.
    pub fn of_stored(roles: &serde_json::Value) -> HashSet<Self> {
        roles
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().and_then(Self::from_stored))
            .collect()
    }
}

/// What a token may do. A token's scopes narrow what its user could do; they never widen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enum)]
pub enum Scope {
    /// Read orders (`orders:read`).
    OrdersRead,
    /// Place and move orders (`orders:write`).
    OrdersWrite,
    /// Change menus and restaurants (`menu:write`).
    MenuWrite,
    /// Manage webhooks (`webhooks:write`).
    WebhooksWrite,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 4] = [
        Self::OrdersRead,
        Self::OrdersWrite,
        Self::MenuWrite,
        Self::WebhooksWrite,
    ];

    /// The wire form, e.g. `orders:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrdersRead => "orders:read",
            Self::OrdersWrite => "orders:write",
            Self::MenuWrite => "menu:write",
            Self::WebhooksWrite => "webhooks:write",
        }
    }

    /// Reads the wire form.
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == value)
    }

    /// Known scopes in a space-separated list; unknown ones are dropped.
    pub fn parse_list(values: &str) -> HashSet<Self> {
        values.split_whitespace().filter_map(Self::parse).collect()
    }
}

/// How the viewer proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Anonymous,
    /// A dishpatch access token (a login session or `dishpatch token`).
    Session,
    /// An integrator API token.
    ApiToken,
    /// A token of the outside OpenID provider (resource-server mode).
    External,
}

/// Who is asking, and what they may do.
#[derive(Debug, Clone)]
pub struct Viewer {
    user: Option<Arc<user::Model>>,
    roles: HashSet<Role>,
    staff_of: HashSet<i64>,
    /// `None`: all the user's rights; `Some`: only these.
    scopes: Option<HashSet<Scope>>,
    credential: Credential,
    /// The API token, when that is the credential.
    api_token: Option<i64>,
    /// When the roles were changed last (`users.roles_changed_at` as read, or a later change
    /// taken since); `None`: never.
    roles_as_of: Option<DateTime<Utc>>,
    /// When the credential stops being valid; `None` if it does not expire.
    expires_at: Option<DateTime<Utc>>,
}

impl Viewer {
    /// Nobody.
    pub fn anonymous() -> Self {
        Self {
            user: None,
            roles: HashSet::new(),
            staff_of: HashSet::new(),
            scopes: None,
            credential: Credential::Anonymous,
            api_token: None,
            roles_as_of: None,
            expires_at: None,
        }
    }

    /// The viewer as `user`, with their roles and staff memberships.
    pub async fn for_user(
        db: &DatabaseConnection,
        user: user::Model,
        scopes: Option<HashSet<Scope>>,
        credential: Credential,
    ) -> AppResult<Self> {
        let staff_of = restaurant_staff::Entity::find()
            .filter(restaurant_staff::Column::UserId.eq(user.id))
            .all(db)
            .await?
            .into_iter()
            .map(|membership| membership.restaurant_id)
            .collect();
        Ok(Self {
            roles: Role::of(&user),
            roles_as_of: user.roles_changed_at,
            user: Some(Arc::new(user)),
            staff_of,
            scopes,
            credential,
            api_token: None,
            expires_at: None,
        })
    }

    /// The same viewer, signed in with API token `id`.
    #[must_use]
    fn with_api_token(mut self, id: i64) -> Self {
        self.api_token = Some(id);
        self
    }

    /// The API token the viewer signed in with, if that is the credential.
    pub fn api_token(&self) -> Option<i64> {
        self.api_token
    }

    /// Takes the user's roles as a change made at `changed_at` left them, if it is later than
    /// the roles the viewer has; so a running subscription goes on with its user's rights as
    /// they are now. Another user's change, or an older one, changes nothing.
    pub fn take_roles(&mut self, user_id: i64, roles: &HashSet<Role>, changed_at: DateTime<Utc>) {
        let theirs = self.user.as_ref().is_some_and(|user| user.id == user_id);
        if theirs && self.roles_as_of.is_none_or(|as_of| changed_at > as_of) {
            self.roles.clone_from(roles);
            self.roles_as_of = Some(changed_at);
        }
    }

    /// The same viewer, whose credential stops being valid at `expires_at`.
    #[must_use]
    pub fn expiring(mut self, expires_at: Option<DateTime<Utc>>) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// When the viewer's credential stops being valid (`None`: it does not expire). A
    /// WebSocket authenticated with it is closed then.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&Arc<user::Model>> {
        self.user.as_ref()
    }

    /// The signed-in user, or `UNAUTHENTICATED`.
    pub fn require_user(&self) -> AppResult<&Arc<user::Model>> {
        self.user.as_ref().ok_or(AppError::Unauthenticated)
    }

    /// How the viewer signed in.
    pub fn credential(&self) -> Credential {
        self.credential
    }

    /// Whether the viewer has `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the viewer is an admin.
    pub fn is_admin(&self) -> bool {
        self.has_role(Role::Admin)
    }

    /// Whether the viewer is `user_id` or an admin.
    pub fn is_self_or_admin(&self, user_id: i64) -> bool {
        self.user.as_ref().is_some_and(|u| u.id == user_id) || self.is_admin()
    }

    /// Whether the viewer may read `user_id`'s private data (email, roles, saved addresses, API
    /// tokens): the user themselves, or an admin in a full session. No token scope covers
    /// another user's personal data, so an admin's API token or narrowed token is refused, as
    /// the `users` listing refuses it.
    pub fn may_read_private_of(&self, user_id: i64) -> AppResult<()> {
        if self.require_user()?.id == user_id {
            Ok(())
        } else if self.is_admin() {
            self.require_full_session()
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// Whether the viewer works at `restaurant_id`.
    pub fn is_staff_of(&self, restaurant_id: i64) -> bool {
        self.staff_of.contains(&restaurant_id)
    }

    /// Whether the credential allows `scope` (full sessions allow everything).
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes
            .as_ref()
            .is_none_or(|scopes| scopes.contains(&scope))
    }

    /// `UNAUTHENTICATED` for nobody, `FORBIDDEN` without `role`.
    pub fn require_role(&self, role: Role) -> AppResult<()> {
        self.require_user()?;
        if self.has_role(role) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// `UNAUTHENTICATED` for nobody, `FORBIDDEN` when the credential lacks `scope`.
    pub fn require_scope(&self, scope: Scope) -> AppResult<()> {
        self.require_user()?;
        if self.allows(scope) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }

    /// `FORBIDDEN` unless the credential is a full session: creating tokens and managing users
    /// is not something a narrowed token may do.
    pub fn require_full_session(&self) -> AppResult<()> {
        self.require_user()?;
        if self.scopes.is_none() && self.credential != Credential::ApiToken {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// Why a credential was refused; the client only ever sees `UNAUTHENTICATED`.
#[derive(Debug)]
pub enum AuthFailure {
    /// Malformed, tampered, unknown, revoked or of an unknown issuer.
    Invalid(&'static str),
    Expired,
    /// The check itself failed (database, provider); the request cannot be judged.
    Unavailable(AppError),
}

/// Turns the `Authorization` header into a `Viewer`.
pub struct Authenticator {
    pub db: DatabaseConnection,
    pub tokens: Arc<AccessTokens>,
    pub external: Option<ExternalTokens>,
}

impl Authenticator {
    /// The viewer for an `Authorization` header value (anonymous without one).
    pub async fn viewer(&self, authorization: Option<&str>) -> Result<Viewer, AuthFailure> {
        let Some(header) = authorization else {
            return Ok(Viewer::anonymous());
        };
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthFailure::Invalid("not a bearer credential"))?;
        if token.starts_with(API_TOKEN_PREFIX) {
            return self.api_token(token).await;
        }
        if AccessTokens::is_own(token) {
            let claims = self.tokens.verify(token).map_err(|error| match error {
                TokenError::Expired => AuthFailure::Expired,
                TokenError::Invalid => AuthFailure::Invalid("bad access token"),
            })?;
            let user_id: i64 = claims
                .sub
                .parse()
                .map_err(|_| AuthFailure::Invalid("bad subject"))?;
            let user = user::Entity::find_by_id(user_id)
                .one(&self.db)
                .await
                .map_err(|e| AuthFailure::Unavailable(e.into()))?
                .ok_or(AuthFailure::Invalid("unknown user"))?;
            let scopes = claims.scope.as_deref().map(Scope::parse_list);
            return Viewer::for_user(&self.db, user, scopes, Credential::Session)
                .await
                .map(|viewer| viewer.expiring(DateTime::from_timestamp(claims.exp, 0)))
                .map_err(AuthFailure::Unavailable);
        }
        match &self.external {
            Some(external) => external.viewer(&self.db, token).await,
            None => Err(AuthFailure::Invalid("unknown issuer")),
        }
    }

    async fn api_token(&self, secret: &str) -> Result<Viewer, AuthFailure> {
        let (token, user) = services::api_tokens::authenticate(&self.db, secret, Utc::now())
            .await
            .map_err(AuthFailure::Unavailable)?
            .ok_or(AuthFailure::Invalid(
                "unknown, revoked or expired API token",
            ))?;
        let scopes = token
            .scopes
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().and_then(Scope::parse))
            .collect();
        Viewer::for_user(&self.db, user, Some(scopes), Credential::ApiToken)
            .await
            .map(|viewer| viewer.with_api_token(token.id).expiring(token.expires_at))
            .map_err(AuthFailure::Unavailable)
    }
}
