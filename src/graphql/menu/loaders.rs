//! Loaders of whole menus, one statement for the categories and one for the items of any
//! number of restaurants.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entities::{FromRowByPosition, ReadColumn as _, menu_category, menu_item, read_rows};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QueryResult, QuerySelect, QueryTrait, prelude::Json,
};

use crate::{
    db::one_of,
    error::{AppError, AppResult},
    graphql::loaders::{LoadError, group_by},
};

/// Menu categories by restaurant id, in menu order.
pub struct CategoriesByRestaurant(pub DatabaseConnection);

impl Loader<i64> for CategoriesByRestaurant {
    type Value = Arc<[Arc<menu_category::Model>]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let statement = menu_category::Entity::find()
            .filter(one_of(
                menu_category::Column::RestaurantId,
                keys,
                self.0.get_database_backend(),
            ))
            .filter(menu_category::Column::DeletedAt.is_null())
            .order_by_asc(menu_category::Column::Position)
            .order_by_asc(menu_category::Column::Id)
            .build(self.0.get_database_backend());
        let rows = self
            .0
            .query_all_raw(statement)
            .await
            .map_err(AppError::from)?;
        let rows = menu_category::Model::from_rows(&rows).map_err(AppError::from)?;
        Ok(group_by(rows.into_iter().map(Arc::new), |row| {
            row.restaurant_id
        }))
    }
}

/// What the API shows of a menu item: every column but its bookkeeping (position and
/// timestamps), with the longer details only when the query asked for them.
#[derive(Debug)]
pub struct ItemRow {
    pub id: i64,
    pub restaurant_id: i64,
    pub category_id: i64,
    pub name: String,
    /// Price in minor units of `currency`.
    pub price_amount: i64,
    pub currency: String,
    pub is_available: bool,
    /// `None` when the statement that read the row left the details out.
    pub details: Option<Arc<ItemDetails>>,
}

/// The columns of a menu item that listings mostly leave out.
#[derive(Debug)]
pub struct ItemDetails {
    pub description: String,
    /// A JSON array of stored tags (`vegan`, `gluten_free`, ...).
    pub dietary_tags: Json,
    pub image_url: Option<String>,
    /// A JSON array of stored allergens (`gluten`, `milk`, ...).
    pub allergens: Json,
}

impl From<&menu_item::Model> for ItemRow {
    fn from(item: &menu_item::Model) -> Self {
        Self {
            id: item.id,
            restaurant_id: item.restaurant_id,
            category_id: item.category_id,
            name: item.name.clone(),
            price_amount: item.price_amount,
            currency: item.currency.clone(),
            is_available: item.is_available,
            details: Some(Arc::new(item.into())),
        }
    }
}

impl From<&menu_item::Model> for ItemDetails {
    fn from(item: &menu_item::Model) -> Self {
        Self {
            description: item.description.clone(),
            dietary_tags: item.dietary_tags.clone(),
            image_url: item.image_url.clone(),
            allergens: item.allergens.clone(),
        }
    }
}

/// The menu items of one restaurant, with or without their details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ItemsOf {
    pub restaurant_id: i64,
    pub details: bool,
}

/// Menu items (not deleted) by restaurant id, by category id, then by position within the
/// category. Putting the categories themselves in menu order is left to the resolvers, which
/// have the categories: joining them here makes the database hash every category it has.
///
/// Only the columns asked for are read: a menu listing with names and prices is most of what
/// clients ask, and its items are the largest set of rows a query reads (decoding every
/// column of them was a fifth of the server's time in the benchmark's nested query).
pub struct ItemsByRestaurant(pub DatabaseConnection);

impl Loader<ItemsOf> for ItemsByRestaurant {
    type Value = Arc<[Arc<ItemRow>]>;
    type Error = LoadError;

    async fn load(&self, keys: &[ItemsOf]) -> Result<HashMap<ItemsOf, Self::Value>, Self::Error> {
        let mut menus = HashMap::with_capacity(keys.len());
        // One statement per column set asked for; a query almost always asks for one.
        for details in [false, true] {
            let restaurants: Vec<i64> = keys
                .iter()
                .filter(|key| key.details == details)
                .map(|key| key.restaurant_id)
                .collect();
            if restaurants.is_empty() {
                continue;
            }
            let rows = self.read(&restaurants, details).await?;
            menus.extend(
                group_by(rows.into_iter().map(Arc::new), |row| row.restaurant_id)
                    .into_iter()
                    .map(|(restaurant_id, items)| {
                        (
                            ItemsOf {
                                restaurant_id,
                                details,
                            },
                            items,
                        )
                    }),
            );
        }
        Ok(menus)
    }
}

impl ItemsByRestaurant {
    async fn read(&self, restaurants: &[i64], details: bool) -> AppResult<Vec<ItemRow>> {
        use menu_item::Column;
        // `ItemRow::read` reads these columns by position, in this order.
        let mut query = menu_item::Entity::find().select_only().columns([
            Column::Id,
            Column::RestaurantId,
            Column::CategoryId,
            Column::Name,
            Column::PriceAmount,
            Column::Currency,
            Column::IsAvailable,
        ]);
        if details {
            query = query.columns([
                Column::Description,
                Column::DietaryTags,
                Column::ImageUrl,
                Column::Allergens,
            ]);
        }
        let statement = query
            .filter(one_of(
                Column::RestaurantId,
                restaurants,
                self.0.get_database_backend(),
            ))
            .filter(Column::DeletedAt.is_null())
            .order_by_asc(Column::CategoryId)
            .order_by_asc(Column::Position)
            .order_by_asc(Column::Id)
            .build(self.0.get_database_backend());
        let rows = self.0.query_all_raw(statement).await?;
        Ok(read_rows(&rows, |row, check| {
            ItemRow::read(row, details, check)
        })?)
    }
}

impl ItemRow {
    /// An item from the columns `ItemsByRestaurant::read` selects, by position.
    fn read(row: &QueryResult, details: bool, check: bool) -> Result<Self, DbErr> {
        Ok(Self {
            id: i64::read(row, 0, check)?,
            restaurant_id: i64::read(row, 1, check)?,
            category_id: i64::read(row, 2, check)?,
            name: String::read(row, 3, check)?,
            price_amount: i64::read(row, 4, check)?,
            currency: String::read(row, 5, check)?,
            is_available: bool::read(row, 6, check)?,
            details: if details {
                Some(Arc::new(ItemDetails {
                    description: String::read(row, 7, check)?,
                    dietary_tags: Json::read(row, 8, check)?,
                    image_url: Option::read(row, 9, check)?,
                    allergens: Json::read(row, 10, check)?,
                }))
            } else {
                None
            },
        })
    }
}

/// An option group of a menu item with its options, in menu order.
pub type GroupRow = (
    entities::menu_option_group::Model,
    Vec<entities::menu_option::Model>,
);

/// Option groups (with their options) by menu item id: two statements per batch, however
/// many items a page shows.
pub struct OptionGroupsByItem(pub DatabaseConnection);

impl Loader<i64> for OptionGroupsByItem {
    type Value = Arc<[Arc<GroupRow>]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let groups = crate::services::menu_options::groups_of(&self.0, keys).await?;
        Ok(groups
            .into_iter()
            .map(|(item, groups)| (item, groups.into_iter().map(Arc::new).collect()))
            .collect())
    }
}
