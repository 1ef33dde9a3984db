//! `viewer`, and `users` for admins.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use sea_orm::DatabaseConnection;

use super::types::User;
use crate::{
    auth::{Role, guards::viewer},
    graphql::relay::{Direction, Page, PageArgs, PageInfo, decode_cursor, encode_cursor},
    services::users::{self, UserFilter},
};

/// Which users to list.
#[derive(InputObject, Default)]
#[graphql(name = "UserFilter")]
pub struct UserFilterInput {
    /// The user with this email (compared case-insensitively).
    pub email: Option<String>,
    /// Users holding this role.
    pub role: Option<Role>,
}

/// Who is asking.
#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The signed-in user; null for anonymous requests.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        Ok(viewer(ctx)?.user().cloned().map(User))
    }

    /// Every user, oldest first, for admins: find someone by email to grant a role or add them
    /// to a restaurant's staff. Needs a full session (not an API token).
    #[graphql(
        complexity = "crate::graphql::relay::connection_cost(first, last, 20, child_complexity)"
    )]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which users.")] filter: Option<UserFilterInput>,
        #[graphql(desc = "Cursor to start after (with `first`).")] after: Option<String>,
        #[graphql(desc = "Cursor to end before (with `last`).")] before: Option<String>,
        #[graphql(desc = "How many from the start, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "How many from the end, at most 100.")] last: Option<i32>,
    ) -> Result<UserConnection> {
        let viewer = viewer(ctx)?;
        viewer.require_role(Role::Admin)?;
        viewer.require_full_session()?;
        let args = PageArgs::new(first, after, last, before, 20)?;
        let cursor = args
            .cursor
            .as_deref()
            .map(decode_cursor::<i64>)
            .transpose()?;
        let filter = filter.unwrap_or_default();
        let filter = UserFilter {
            email: filter.email,
            role: filter.role,
        };
        let db = ctx.data::<DatabaseConnection>()?;
        let rows = users::find(
            db,
            &filter,
            cursor,
            args.direction == Direction::Forward,
            args.limit + 1,
        )
        .await?;
        Ok(UserConnection {
            page: Page::from_rows(rows, &args),
            args,
            filter,
        })
    }
}

/// A page of users.
pub struct UserConnection {
    page: Page<entities::user::Model>,
    args: PageArgs,
    filter: UserFilter,
}

/// A user and its cursor.
#[derive(SimpleObject)]
pub struct UserEdge {
    /// Opaque position of the user; pass it as `after` or `before`.
    cursor: String,
    /// The user.
    node: User,
}

/// A page of users.
#[Object]
impl UserConnection {
    /// The users of this page.
    async fn edges(&self) -> Vec<UserEdge> {
        self.page
            .items
            .iter()
            .map(|user| UserEdge {
                cursor: encode_cursor(&user.id),
                node: User(std::sync::Arc::new(user.clone())),
            })
            .collect()
    }

    /// Where this page is in the list.
    async fn page_info(&self) -> PageInfo {
        self.page
            .page_info(&self.args, |user| encode_cursor(&user.id))
    }

    /// How many users match the filter.
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(users::count(db, &self.filter).await? as i64)
    }
}
