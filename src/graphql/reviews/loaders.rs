//! Pages of reviews for many restaurants in one statement that reads each restaurant's page
//! through its index (`LATERAL` on PostgreSQL, a per-restaurant `LIMIT` subquery on SQLite).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entities::{FromRowByPosition, review};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, IdenStatic, Iterable, Statement};
use serde::{Deserialize, Serialize};

use crate::{
    db::Params,
    error::{AppError, AppResult},
    graphql::{
        loaders::ParentPages,
        relay::{Direction, PageArgs, decode_cursor},
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

impl ParentPages for ReviewPages {
    type Key = ReviewPageKey;
    type Shape = PageArgs;
    type Row = review::Model;

    fn parts(key: &ReviewPageKey) -> (PageArgs, i64) {
        (key.args.clone(), key.restaurant_id)
    }

    fn key(args: &PageArgs, restaurant_id: i64) -> ReviewPageKey {
        ReviewPageKey {
            restaurant_id,
            args: args.clone(),
        }
    }

    fn args(args: &PageArgs) -> &PageArgs {
        args
    }

    async fn read(
        &self,
        args: &PageArgs,
        restaurant_ids: &[i64],
    ) -> AppResult<HashMap<i64, Vec<review::Model>>> {
        self.load_pages(args, restaurant_ids).await
    }
}

impl ReviewPages {
    /// Each restaurant's page, read through the `(restaurant_id, created_at, id)` index: at
    /// most `limit + 1` rows per restaurant, one statement for all of them, and one statement
    /// text whatever the number of restaurants (their ids travel as one JSON array).
    async fn load_pages(
        &self,
        args: &PageArgs,
        restaurant_ids: &[i64],
    ) -> AppResult<HashMap<i64, Vec<review::Model>>> {
        // Newest first is (created_at, id) descending; reading backwards walks it from the oldest.
        let forward = args.direction == Direction::Forward;
        let (direction, beyond) = if forward { ("DESC", "<") } else { ("ASC", ">") };
        let backend = self.0.get_database_backend();
        let postgres = backend == DbBackend::Postgres;
        let mut params = Params::new(backend);
        let restaurants = params.push_ids(restaurant_ids);
        let after = match &args.cursor {
            None => String::new(),
            Some(cursor) => {
                let position: ReviewCursor = decode_cursor(cursor)?;
                // Times the server writes have four-digit years; others are no cursor of ours,
                // and PostgreSQL refuses times before 4713 BC as an error, where SQLite
                // compares text.
                if !(1..=9999).contains(&chrono::Datelike::year(&position.created_at)) {
                    return Err(AppError::bad_input(
                        "this cursor does not belong to this list; use a cursor from its pages",
                    ));
                }
                let (at, same_at, id) = (
                    params.push(position.created_at),
                    params.push(position.created_at),
                    params.push(position.id),
                );
                format!(
                    " AND (created_at {beyond} {at} OR (created_at = {same_at} AND id {beyond} {id}))"
                )
            }
        };
        let limit = params.push(args.limit + 1);
        let columns = review::Column::iter()
            .map(|column| format!("r.{}", column.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let order = format!("ORDER BY created_at {direction}, id {direction} LIMIT {limit}");
        let sql = if postgres {
            format!(
                "SELECT {columns} FROM unnest(CAST({restaurants} AS bigint[])) AS p(id) \
                 CROSS JOIN LATERAL (SELECT * FROM reviews WHERE restaurant_id = p.id{after} {order}) AS r \
                 ORDER BY r.restaurant_id, r.created_at {direction}, r.id {direction}"
            )
        } else {
            format!(
                "SELECT {columns} FROM json_each({restaurants}) AS p JOIN reviews AS r ON r.id IN \
                 (SELECT id FROM reviews WHERE restaurant_id = p.value{after} {order}) \
                 ORDER BY r.restaurant_id, r.created_at {direction}, r.id {direction}"
            )
        };
        let rows = self
            .0
            .query_all_raw(Statement::from_sql_and_values(backend, sql, params.values))
            .await?;
        // The select lists `Column::iter()`, in order.
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
