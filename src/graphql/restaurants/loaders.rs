//! Loaders of what hangs off a restaurant: its cuisines and its opening hours.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entities::{opening_hours, restaurant_cuisine};
use sea_orm::{DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::{
    db::one_of,
    error::AppError,
    graphql::loaders::{LoadError, group_by},
};

/// Cuisines of restaurants, by restaurant id, alphabetically.
pub struct CuisinesByRestaurant(pub DatabaseConnection);

impl Loader<i64> for CuisinesByRestaurant {
    type Value = Arc<[String]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = restaurant_cuisine::Entity::find()
            .filter(one_of(
                restaurant_cuisine::Column::RestaurantId,
                keys,
                self.0.get_database_backend(),
            ))
            .order_by_asc(restaurant_cuisine::Column::Cuisine)
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(group_by(rows, |row| row.restaurant_id)
            .into_iter()
            .map(|(id, rows)| (id, rows.iter().map(|row| row.cuisine.clone()).collect()))
            .collect())
    }
}

/// Opening periods of restaurants, by restaurant id, in week order.
pub struct OpeningHoursByRestaurant(pub DatabaseConnection);

impl Loader<i64> for OpeningHoursByRestaurant {
    type Value = Arc<[opening_hours::Model]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = opening_hours::Entity::find()
            .filter(one_of(
                opening_hours::Column::RestaurantId,
                keys,
                self.0.get_database_backend(),
            ))
            .order_by_asc(opening_hours::Column::OpensAt)
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(group_by(rows, |row| row.restaurant_id))
    }
}
