//! Loaders of what hangs off a restaurant (its cuisines and its opening hours), and of the
//! restaurants a user works at.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entities::{
    FromRowByPosition, ReadColumn as _, opening_hours, restaurant, restaurant_closure,
    restaurant_cuisine,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, IdenStatic, Iterable, QueryFilter,
    QueryOrder, Statement,
};

use crate::{
    db::{Params, one_of},
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

/// Dated closures of restaurants that have not ended (by any zone's date), by restaurant id,
/// soonest first.
pub struct ClosuresByRestaurant(pub DatabaseConnection);

impl Loader<i64> for ClosuresByRestaurant {
    type Value = Arc<[restaurant_closure::Model]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        use sea_orm::ColumnTrait;
        // No zone's date is more than a day behind UTC's.
        let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
        let rows = restaurant_closure::Entity::find()
            .filter(one_of(
                restaurant_closure::Column::RestaurantId,
                keys,
                self.0.get_database_backend(),
            ))
            .filter(restaurant_closure::Column::EndsOn.gte(yesterday))
            .order_by_asc(restaurant_closure::Column::StartsOn)
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(group_by(rows, |row| row.restaurant_id))
    }
}

/// The restaurants each user works at, with whether they own it: those they own, and those
/// whose staff they are, by name. One statement for any number of users.
pub struct WorkplacesByUser(pub DatabaseConnection);

impl Loader<i64> for WorkplacesByUser {
    type Value = Arc<[(Arc<restaurant::Model>, bool)]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let backend = self.0.get_database_backend();
        let mut params = Params::new(backend);
        // SQLite's `?` are bound in order, so each use binds the ids again.
        let (owned, staffed) = (params.push_any(keys), params.push_any(keys));
        let columns = restaurant::Column::iter()
            .map(|column| format!("r.{}", column.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        // The member's id after the restaurant's columns (read by position), one row per
        // membership: ownership or a staff row (an owner is usually on the staff as well).
        let sql = format!(
            "SELECT {columns}, m.user_id FROM restaurants AS r JOIN (\
               SELECT id AS restaurant_id, owner_id AS user_id FROM restaurants WHERE owner_id {owned} \
               UNION SELECT restaurant_id, user_id FROM restaurant_staff WHERE user_id {staffed}\
             ) AS m ON m.restaurant_id = r.id ORDER BY m.user_id, r.name, r.id"
        );
        let rows = self
            .0
            .query_all_raw(Statement::from_sql_and_values(backend, sql, params.values))
            .await
            .map_err(AppError::from)?;
        let member_column = restaurant::Model::COLUMNS.len();
        let mut workplaces: HashMap<i64, Vec<(Arc<restaurant::Model>, bool)>> = HashMap::new();
        for (index, row) in rows.iter().enumerate() {
            let restaurant = restaurant::Model::read(row, index == 0).map_err(AppError::from)?;
            let member = i64::read(row, member_column, index == 0).map_err(AppError::from)?;
            let owns = restaurant.owner_id == member;
            let mine = workplaces.entry(member).or_default();
            // The UNION keeps one row per (restaurant, member) already.
            mine.push((Arc::new(restaurant), owns));
        }
        Ok(workplaces
            .into_iter()
            .map(|(user, places)| (user, Arc::from(places)))
            .collect())
    }
}
