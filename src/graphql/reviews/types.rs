//! `Review` and its connection.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};
use entities::review;
use futures_util::future::BoxFuture;

use super::loaders::{ReviewCursor, ReviewPageKey};
use crate::{
    error::AppError,
    graphql::{
        common::Timestamp,
        loaders::Loaders,
        menu::types::load_restaurant,
        relay::{GlobalId, NodeKind, Page, PageArgs, PageInfo, encode_cursor},
        restaurants::types::{Edge, Restaurant},
        users::types::User,
    },
};

/// A customer's review of an order from a restaurant.
#[derive(Clone)]
pub struct Review(pub Arc<review::Model>);

/// A customer's review of an order from a restaurant.
#[Object]
impl Review {
    /// Global ID of the review.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::Review, self.0.id)
    }

    /// Stars from 1 to 5.
    async fn rating(&self) -> i32 {
        self.0.rating
    }

    /// What the customer wrote; may be empty.
    async fn body(&self) -> &str {
        &self.0.body
    }

    /// When the review was written.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }

    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> Result<User> {
        let user = ctx
            .data::<Loaders>()?
            .users
            .load_one(self.0.author_id)
            .await?
            .ok_or_else(|| AppError::NotFound("user".into()))?;
        Ok(User(user))
    }

    /// The restaurant reviewed.
    async fn restaurant(&self, ctx: &Context<'_>) -> Result<Restaurant> {
        load_restaurant(ctx, self.0.restaurant_id).await
    }
}

/// A page of reviews.
pub struct ReviewConnection {
    page: Arc<Page<review::Model>>,
    args: PageArgs,
    total_count: i64,
}

impl ReviewConnection {
    /// The page `args` of a restaurant's reviews; `total_count` is its rating count.
    ///
    /// Boxed, like `OrderConnection::load`: every field of a restaurant gets a future the size
    /// of the type's largest resolver.
    pub fn load<'a>(
        ctx: &'a Context<'_>,
        restaurant_id: i64,
        total_count: i64,
        args: PageArgs,
    ) -> BoxFuture<'a, Result<Self>> {
        Box::pin(async move {
            let page = ctx
                .data::<Loaders>()?
                .review_pages
                .load_one(ReviewPageKey {
                    restaurant_id,
                    args: args.clone(),
                })
                .await?
                .unwrap_or_default();
            Ok(Self {
                page,
                args,
                total_count,
            })
        })
    }
}

fn review_cursor(review: &review::Model) -> String {
    encode_cursor(&ReviewCursor::from(review))
}

/// A page of reviews.
#[Object]
impl ReviewConnection {
    /// The reviews of this page with their cursors.
    async fn edges(&self) -> Vec<Edge<Review, ReviewCursor>> {
        self.page
            .items
            .iter()
            .map(|review| Edge {
                node: Review(Arc::new(review.clone())),
                position: ReviewCursor::from(review),
            })
            .collect()
    }

    /// The reviews of this page.
    async fn nodes(&self) -> Vec<Review> {
        self.page
            .items
            .iter()
            .map(|review| Review(Arc::new(review.clone())))
            .collect()
    }

    /// Where this page is in the list.
    async fn page_info(&self) -> PageInfo {
        self.page.page_info(&self.args, review_cursor)
    }

    /// Number of reviews over all pages.
    async fn total_count(&self) -> i64 {
        self.total_count
    }
}
