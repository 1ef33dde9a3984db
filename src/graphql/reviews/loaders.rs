//! Pages of reviews for many restaurants in one statement, using a window function to cut
//! each restaurant's page.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};
use entities::{FromRowByPosition, review};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, Iterable,
    sea_query::{Alias, Expr, ExprTrait, Func, Order, Query, WindowStatement},
};
use serde::{Deserialize, Serialize};

use crate::{
    error::{AppError, AppResult},
    graphql::{
        loaders::LoadError,
        relay::{Direction, Page, PageArgs, decode_cursor},
    },
};

/// Position of a review in the newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewCursor {
    #[serde(rename = "t")]
    pub created_at: DateTime<Utc>,
    pub id: i64,
}

impl From<&review::Model> for ReviewCursor {
    fn from(review: &review::Model) -> Self {
        Self {
            created_at: review.created_at,
            id: review.id,
        }
    }
}

/// One restaurant's page of reviews.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReviewPageKey {
    pub restaurant_id: i64,
    pub args: PageArgs,
}

/// Review pages, newest first, keyed by restaurant and page arguments.
pub struct ReviewPages(pub DatabaseConnection);

impl Loader<ReviewPageKey> for ReviewPages {
    type Value = Arc<Page<review::Model>>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[ReviewPageKey],
    ) -> Result<HashMap<ReviewPageKey, Self::Value>, Self::Error> {
        // Restaurants asking for the same page share one statement.
        let mut by_args: HashMap<&PageArgs, Vec<i64>> = HashMap::new();
        for key in keys {
            by_args
                .entry(&key.args)
                .or_default()
                .push(key.restaurant_id);
        }
        let mut pages = HashMap::with_capacity(keys.len());
        for (args, restaurant_ids) in by_args {
            let mut rows = self.load_pages(args, &restaurant_ids).await?;
            for restaurant_id in restaurant_ids {
                let mine = rows.remove(&restaurant_id).unwrap_or_default();
                pages.insert(
                    ReviewPageKey {
                        restaurant_id,
                        args: args.clone(),
                    },
                    Arc::new(Page::from_rows(mine, args)),
                );
            }
        }
        Ok(pages)
    }
}

impl ReviewPages {
    async fn load_pages(
        &self,
        args: &PageArgs,
        restaurant_ids: &[i64],
    ) -> AppResult<HashMap<i64, Vec<review::Model>>> {
        // Newest first is (created_at, id) descending; reading backwards walks it from the oldest.
        let forward = args.direction == Direction::Forward;
        let order = if forward { Order::Desc } else { Order::Asc };
        let mut inner = Query::select();
        inner
            .columns(review::Column::iter())
            .from(review::Entity)
            .and_where(review::Column::RestaurantId.is_in(restaurant_ids.iter().copied()))
            .expr_window_as(
                Func::cust(Alias::new("ROW_NUMBER")),
                WindowStatement::partition_by(review::Column::RestaurantId)
                    .order_by(review::Column::CreatedAt, order.clone())
                    .order_by(review::Column::Id, order.clone())
                    .take(),
                Alias::new("row_number"),
            );
        if let Some(cursor) = &args.cursor {
            let position: ReviewCursor = decode_cursor(cursor)?;
            // Times the server writes have four-digit years; others are no cursor of ours, and
            // PostgreSQL refuses times before 4713 BC as an error, where SQLite compares text.
            if !(1..=9999).contains(&chrono::Datelike::year(&position.created_at)) {
                return Err(AppError::bad_input(
                    "this cursor does not belong to this list; use a cursor from its pages",
                ));
            }
            let (at, id) = (
                Expr::col(review::Column::CreatedAt),
                Expr::col(review::Column::Id),
            );
            inner.and_where(if forward {
                at.clone()
                    .lt(position.created_at)
                    .or(at.eq(position.created_at).and(id.lt(position.id)))
            } else {
                at.clone()
                    .gt(position.created_at)
                    .or(at.eq(position.created_at).and(id.gt(position.id)))
            });
        }
        let statement = Query::select()
            .columns(review::Column::iter())
            .from_subquery(inner, Alias::new("ranked"))
            .and_where(Expr::col(Alias::new("row_number")).lte(args.limit + 1))
            .order_by(review::Column::RestaurantId, Order::Asc)
            .order_by(review::Column::CreatedAt, order.clone())
            .order_by(review::Column::Id, order)
            .take();
        let rows = self.0.query_all(&statement).await?;
        // The outer select lists `Column::iter()`, in order.
        let reviews = review::Model::from_rows(&rows).map_err(AppError::from)?;
        let mut grouped: HashMap<i64, Vec<review::Model>> = HashMap::new();
        for review in reviews {
            grouped
                .entry(review.restaurant_id)
                .or_default()
                .push(review);
        }
        Ok(grouped)
    }
}
