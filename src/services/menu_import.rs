//! Menus imported whole from a point-of-sale system (`importMenu`). The integrator sends the
//! entire menu, every entry under its own external id; one transaction makes the restaurant's
//! menu match: entries found by external id are updated where they differ, the others created,
//! and everything on the menu that the import does not name (entries made by hand included) is
//! removed the way the menu mutations remove it (past orders keep theirs). Running the same
//! import twice changes nothing the second time, and any bad entry changes nothing at all.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entities::{menu_category, menu_item};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, sea_query::Expr,
};
use serde_json::json;

use super::{
    ErrorCode, InputError,
    menu_options::{self, CheckedGroup, GroupSpec, MAX_EXTERNAL_ID_CHARS, Tally, count, position},
    menus::{MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_PRICE},
};
use crate::{auth::Viewer, db::begin_write, error::AppResult, graphql::common::Money};

/// Most categories in one menu.
pub const MAX_CATEGORIES: usize = 100;
/// Most items in one menu.
pub const MAX_ITEMS: usize = 2000;

/// An item as the integrator sends it.
#[derive(Debug, Clone)]
pub struct ImportItem {
    pub external_id: String,
    pub name: String,
    pub description: Option<String>,
    /// A decimal amount in the restaurant's currency.
    pub price: String,
    pub dietary_tags: Vec<&'static str>,
    pub allergens: Vec<&'static str>,
    pub available: bool,
    pub option_groups: Vec<GroupSpec>,
}

/// A category as the integrator sends it, with its items in menu order.
#[derive(Debug, Clone)]
pub struct ImportCategory {
    pub external_id: String,
    pub name: String,
    pub items: Vec<ImportItem>,
}

/// What an import changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub categories: Tally,
    pub items: Tally,
    pub option_groups: Tally,
    pub options: Tally,
}

impl Summary {
    fn any(&self) -> bool {
        self.categories.any() || self.items.any() || self.option_groups.any() || self.options.any()
    }
}

/// An item, checked and in stored form.
struct Item<'a> {
    given: &'a ImportItem,
    name: String,
    description: String,
    price: i64,
    dietary_tags: serde_json::Value,
    allergens: serde_json::Value,
    groups: Vec<CheckedGroup>,
}

fn path(parts: &[&dyn std::fmt::Display]) -> Vec<String> {
    parts.iter().map(ToString::to_string).collect()
}

/// A sorted JSON array of `values` without repeats: how tags are stored, so equal sets
/// compare equal.
fn stored_set(values: &[&'static str]) -> serde_json::Value {
    let mut values = values.to_vec();
    values.sort_unstable();
    values.dedup();
    json!(values)
}

fn external_id(
    value: &str,
    at: &[String],
    seen: &mut HashSet<String>,
    errors: &mut Vec<InputError>,
) -> String {
    let value = value.trim();
    if !(1..=MAX_EXTERNAL_ID_CHARS).contains(&value.chars().count()) {
        errors.push(InputError::at(
            at,
            ErrorCode::Invalid,
            format!("an external id of 1 to {MAX_EXTERNAL_ID_CHARS} characters is needed"),
        ));
    } else if !seen.insert(value.to_owned()) {
        errors.push(InputError::at(at, ErrorCode::Invalid, "named twice"));
    }
    value.to_owned()
}

fn text(
    value: &str,
    least: usize,
    most: usize,
    at: &[String],
    errors: &mut Vec<InputError>,
) -> String {
    super::bounded_text("", value, least, most).unwrap_or_else(|error| {
        errors.push(InputError::at(at, error.code, error.message));
        String::new()
    })
}

/// A category checked: its external id, its name and its items.
type Checked<'a> = (String, String, Vec<Item<'a>>);

/// Checks the whole menu; every problem found, each at its path below `input`.
fn check<'a>(
    categories: &'a [ImportCategory],
    currency: &str,
) -> Result<Vec<Checked<'a>>, Vec<InputError>> {
    let mut errors = Vec::new();
    if categories.len() > MAX_CATEGORIES {
        errors.push(InputError::new(
            "categories",
            ErrorCode::Invalid,
            format!("at most {MAX_CATEGORIES} categories"),
        ));
    }
    let total: usize = categories.iter().map(|c| c.items.len()).sum();
    if total > MAX_ITEMS {
        errors.push(InputError::new(
            "categories",
            ErrorCode::Invalid,
            format!("at most {MAX_ITEMS} items in all"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (mut category_ids, mut item_ids) = (HashSet::new(), HashSet::new());
    let mut checked = Vec::with_capacity(categories.len());
    for (c, category) in categories.iter().enumerate() {
        let external = external_id(
            &category.external_id,
            &path(&[&"categories", &c, &"externalId"]),
            &mut category_ids,
            &mut errors,
        );
        let name = text(
            &category.name,
            1,
            MAX_NAME_CHARS,
            &path(&[&"categories", &c, &"name"]),
            &mut errors,
        );
        let mut items = Vec::with_capacity(category.items.len());
        for (i, given) in category.items.iter().enumerate() {
            let at = |field: &str| path(&[&"categories", &c, &"items", &i, &field]);
            external_id(
                &given.external_id,
                &at("externalId"),
                &mut item_ids,
                &mut errors,
            );
            let name = text(&given.name, 1, MAX_NAME_CHARS, &at("name"), &mut errors);
            let description = text(
                given.description.as_deref().unwrap_or(""),
                0,
                MAX_DESCRIPTION_CHARS,
                &at("description"),
                &mut errors,
            );
            let price = Money::parse_minor(given.price.trim(), currency)
                .filter(|price| (1..=MAX_PRICE).contains(price))
                .unwrap_or_else(|| {
                    errors.push(InputError::at(
                        &at("price"),
                        ErrorCode::Invalid,
                        format!(
                            "a price above 0 and at most {} {currency}",
                            Money::from_minor(MAX_PRICE, currency).amount
                        ),
                    ));
                    0
                });
            let groups =
                menu_options::check(&given.option_groups, currency, &at("optionGroups"), true)
                    .unwrap_or_else(|found| {
                        errors.extend(found);
                        Vec::new()
                    });
            items.push(Item {
                given,
                name,
                description,
                price,
                dietary_tags: stored_set(&given.dietary_tags),
                allergens: stored_set(&given.allergens),
                groups,
            });
        }
        checked.push((external, name, items));
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(errors)
    }
}

/// Makes `restaurant_id`'s menu be `categories`, as its owner, staff, an admin, or a
/// `menu:write` token of one. On any user error nothing is changed and every error is
/// returned.
pub async fn import(
    db: &DatabaseConnection,
    viewer: &Viewer,
    restaurant_id: i64,
    categories: &[ImportCategory],
    now: DateTime<Utc>,
) -> AppResult<Result<Summary, Vec<InputError>>> {
    let txn = begin_write(db).await?;
    let Some(restaurant) = super::menus::authorize(&txn, viewer, restaurant_id).await? else {
        return Ok(Err(vec![InputError::new(
            "restaurantId",
            ErrorCode::NotFound,
            "no such restaurant",
        )]));
    };
    let checked = match check(categories, &restaurant.currency) {
        Ok(checked) => checked,
        Err(errors) => return Ok(Err(errors)),
    };
    let summary = match apply(&txn, &restaurant, &checked, now).await? {
        Ok(summary) => summary,
        Err(error) => return Ok(Err(vec![error])),
    };
    if summary.any() {
        super::menus::changed(&txn, restaurant_id, "menu_imported", &[], &[], now).await?;
        txn.commit().await?;
    }
    Ok(Ok(summary))
}

async fn apply(
    txn: &DatabaseTransaction,
    restaurant: &entities::restaurant::Model,
    menu: &[Checked<'_>],
    now: DateTime<Utc>,
) -> AppResult<Result<Summary, InputError>> {
    let mut summary = Summary::default();
    let mut categories: HashMap<Option<String>, Vec<menu_category::Model>> = HashMap::new();
    for category in menu_category::Entity::find()
        .filter(menu_category::Column::RestaurantId.eq(restaurant.id))
        .filter(menu_category::Column::DeletedAt.is_null())
        .order_by_asc(menu_category::Column::Id)
        .all(txn)
        .await?
    {
        categories
            .entry(category.external_id.clone())
            .or_default()
            .push(category);
    }
    let mut items: HashMap<Option<String>, Vec<menu_item::Model>> = HashMap::new();
    for item in menu_item::Entity::find()
        .filter(menu_item::Column::RestaurantId.eq(restaurant.id))
        .filter(menu_item::Column::DeletedAt.is_null())
        .order_by_asc(menu_item::Column::Id)
        .all(txn)
        .await?
    {
        items
            .entry(item.external_id.clone())
            .or_default()
            .push(item);
    }
    // Every existing item's option groups at once: an import that changes little (a POS
    // syncing its whole menu every few minutes) runs a few statements, not two per item.
    let item_ids: Vec<i64> = items.values().flatten().map(|item| item.id).collect();
    let mut existing_groups = menu_options::groups_of(txn, &item_ids).await?;
    for (c, (external, name, entries)) in menu.iter().enumerate() {
        let found = categories
            .get_mut(&Some(external.clone()))
            .and_then(Vec::pop);
        let category_id = match found {
            Some(row) if row.name == *name && row.position == position(c) => row.id,
            Some(row) => {
                let mut active: menu_category::ActiveModel = row.into();
                active.name = Set(name.clone());
                active.position = Set(position(c));
                summary.categories.updated += 1;
                active.update(txn).await?.id
            }
            None => {
                summary.categories.created += 1;
                menu_category::ActiveModel {
                    restaurant_id: Set(restaurant.id),
                    name: Set(name.clone()),
                    position: Set(position(c)),
                    created_at: Set(now),
                    deleted_at: Set(None),
                    external_id: Set(Some(external.clone())),
                    ..Default::default()
                }
                .insert(txn)
                .await?
                .id
            }
        };
        for (i, entry) in entries.iter().enumerate() {
            let found = items
                .get_mut(&Some(entry.given.external_id.trim().to_owned()))
                .and_then(Vec::pop);
            let item = match found {
                Some(row)
                    if row.category_id == category_id
                        && row.name == entry.name
                        && row.description == entry.description
                        && row.price_amount == entry.price
                        && row.dietary_tags == entry.dietary_tags
                        && row.allergens == entry.allergens
                        && row.is_available == entry.given.available
                        && row.position == position(i) =>
                {
                    row
                }
                Some(row) => {
                    let mut active: menu_item::ActiveModel = row.into();
                    active.category_id = Set(category_id);
                    active.name = Set(entry.name.clone());
                    active.description = Set(entry.description.clone());
                    active.price_amount = Set(entry.price);
                    active.dietary_tags = Set(entry.dietary_tags.clone());
                    active.allergens = Set(entry.allergens.clone());
                    active.is_available = Set(entry.given.available);
                    active.position = Set(position(i));
                    active.updated_at = Set(now);
                    summary.items.updated += 1;
                    active.update(txn).await?
                }
                None => {
                    summary.items.created += 1;
                    menu_item::ActiveModel {
                        restaurant_id: Set(restaurant.id),
                        category_id: Set(category_id),
                        name: Set(entry.name.clone()),
                        description: Set(entry.description.clone()),
                        price_amount: Set(entry.price),
                        currency: Set(restaurant.currency.clone()),
                        is_available: Set(entry.given.available),
                        dietary_tags: Set(entry.dietary_tags.clone()),
                        allergens: Set(entry.allergens.clone()),
                        image_url: Set(None),
                        position: Set(position(i)),
                        deleted_at: Set(None),
                        created_at: Set(now),
                        updated_at: Set(now),
                        external_id: Set(Some(entry.given.external_id.trim().to_owned())),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await?
                }
            };
            // A new item has none (and no entry in the map).
            let existing = existing_groups.remove(&item.id).unwrap_or_default();
            let changes =
                match menu_options::sync_from(txn, &item, &entry.groups, existing, now).await? {
                    Ok(changes) => changes,
                    Err(error) => return Ok(Err(error)),
                };
            summary.option_groups += changes.groups;
            summary.options += changes.options;
        }
    }
    // What the import did not name leaves the menu: items first, then their categories.
    let gone_items: Vec<i64> = items.values().flatten().map(|item| item.id).collect();
    if !gone_items.is_empty() {
        summary.items.removed += count(gone_items.len());
        menu_item::Entity::update_many()
            .col_expr(menu_item::Column::DeletedAt, Expr::value(now))
            .col_expr(menu_item::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                menu_item::Column::ExternalId,
                Expr::value(Option::<String>::None),
            )
            .filter(crate::db::one_of(
                menu_item::Column::Id,
                &gone_items,
                txn.get_database_backend(),
            ))
            .exec(txn)
            .await?;
    }
    let gone_categories: Vec<i64> = categories.values().flatten().map(|c| c.id).collect();
    if !gone_categories.is_empty() {
        summary.categories.removed += count(gone_categories.len());
        menu_category::Entity::update_many()
            .col_expr(menu_category::Column::DeletedAt, Expr::value(now))
            .col_expr(
                menu_category::Column::ExternalId,
                Expr::value(Option::<String>::None),
            )
            .filter(crate::db::one_of(
                menu_category::Column::Id,
                &gone_categories,
                txn.get_database_backend(),
            ))
            .exec(txn)
            .await?;
    }
    Ok(Ok(summary))
}
