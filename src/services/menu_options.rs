//! Option groups of menu items ("Size": exactly one of Small / Large +2.00; "Extras": up to
//! three of …). The restaurant says what an item's groups are; [`sync`] makes the database
//! match, in the caller's transaction: groups and options found by id (`setMenuItemOptions`)
//! or by external id (`importMenu`) are updated in place, the others created or removed.
//! Removing is safe for history: order lines copy the options they were placed with.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entities::{menu_item, menu_option, menu_option_group};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder,
};

use super::{ErrorCode, InputError, ServiceResult};
use crate::{
    auth::Viewer,
    db::{begin_write, one_of},
    error::AppResult,
    graphql::common::Money,
};

/// Most option groups on one item.
pub const MAX_GROUPS: usize = 20;
/// Most options in one group.
pub const MAX_OPTIONS: usize = 50;
/// Longest external id.
pub const MAX_EXTERNAL_ID_CHARS: usize = 100;

/// How an entry names the row it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// An existing row by its id; unknown ids are an error.
    Id(i64),
    /// The row with this external id, created when there is none.
    External(String),
    /// A new row.
    New,
}

/// One option as given.
#[derive(Debug, Clone)]
pub struct OptionSpec {
    pub id: Option<i64>,
    pub external_id: Option<String>,
    pub name: String,
    /// A decimal amount in the restaurant's currency, `"0"` or more.
    pub price_delta: String,
    pub available: bool,
}

/// One option group as given.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub id: Option<i64>,
    pub external_id: Option<String>,
    pub name: String,
    pub min_choices: i32,
    pub max_choices: i32,
    pub options: Vec<OptionSpec>,
}

/// An option, checked.
#[derive(Debug, Clone)]
pub struct CheckedOption {
    key: Key,
    path: Vec<String>,
    name: String,
    price_delta: i64,
    available: bool,
}

/// A group, checked: names trimmed, prices in minor units.
#[derive(Debug, Clone)]
pub struct CheckedGroup {
    key: Key,
    path: Vec<String>,
    name: String,
    min_choices: i32,
    max_choices: i32,
    options: Vec<CheckedOption>,
}

/// How many rows of a kind a call created, updated and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub created: u32,
    pub updated: u32,
    pub removed: u32,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, more: Self) {
        self.created += more.created;
        self.updated += more.updated;
        self.removed += more.removed;
    }
}

/// How many rows a list holds, as a tally counts them.
pub(crate) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Tally {
    /// Whether anything changed.
    pub fn any(self) -> bool {
        self.created + self.updated + self.removed > 0
    }
}

/// What a sync changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub groups: Tally,
    pub options: Tally,
}

fn child(path: &[String], parts: &[&str]) -> Vec<String> {
    let mut path = path.to_vec();
    path.extend(parts.iter().map(|part| (*part).to_owned()));
    path
}

/// The key of an entry: by external id (required then) or by id.
fn key_of(
    id: Option<i64>,
    external_id: Option<&str>,
    by_external: bool,
    path: &[String],
    seen: &mut HashSet<Key>,
    errors: &mut Vec<InputError>,
) -> Key {
    let key = if by_external {
        match external_id.map(str::trim) {
            Some(value) if (1..=MAX_EXTERNAL_ID_CHARS).contains(&value.chars().count()) => {
                Key::External(value.to_owned())
            }
            _ => {
                errors.push(InputError::at(
                    &child(path, &["externalId"]),
                    ErrorCode::Invalid,
                    format!("an external id of 1 to {MAX_EXTERNAL_ID_CHARS} characters is needed"),
                ));
                return Key::New;
            }
        }
    } else {
        id.map_or(Key::New, Key::Id)
    };
    if key != Key::New && !seen.insert(key.clone()) {
        let field = if by_external { "externalId" } else { "id" };
        errors.push(InputError::at(
            &child(path, &[field]),
            ErrorCode::Invalid,
            "named twice",
        ));
    }
    key
}

/// Checks `groups` (at `path` of the input) for an item priced in `currency`; every problem
/// found, not just the first. `by_external`: entries are keyed by their external ids.
pub fn check(
    groups: &[GroupSpec],
    currency: &str,
    path: &[String],
    by_external: bool,
) -> Result<Vec<CheckedGroup>, Vec<InputError>> {
    let mut errors = Vec::new();
    if groups.len() > MAX_GROUPS {
        errors.push(InputError::at(
            path,
            ErrorCode::Invalid,
            format!("at most {MAX_GROUPS} option groups per item"),
        ));
        return Err(errors);
    }
    let mut group_keys = HashSet::new();
    let mut checked = Vec::with_capacity(groups.len());
    for (index, group) in groups.iter().enumerate() {
        let group_path = child(path, &[&index.to_string()]);
        let key = key_of(
            group.id,
            group.external_id.as_deref(),
            by_external,
            &group_path,
            &mut group_keys,
            &mut errors,
        );
        let name = super::bounded_text("name", &group.name, 1, super::menus::MAX_NAME_CHARS)
            .map_err(|error| {
                errors.push(InputError::at(
                    &child(&group_path, &["name"]),
                    error.code,
                    error.message,
                ));
            })
            .unwrap_or_default();
        let count = group.options.len();
        if count == 0 || count > MAX_OPTIONS {
            errors.push(InputError::at(
                &child(&group_path, &["options"]),
                ErrorCode::Invalid,
                format!("a group has 1 to {MAX_OPTIONS} options"),
            ));
        }
        let most = i32::try_from(count).unwrap_or(i32::MAX);
        if !(0..=most).contains(&group.min_choices) {
            errors.push(InputError::at(
                &child(&group_path, &["minChoices"]),
                ErrorCode::Invalid,
                format!("0 to the number of options ({count})"),
            ));
        }
        if !(group.min_choices.max(1)..=most).contains(&group.max_choices) {
            errors.push(InputError::at(
                &child(&group_path, &["maxChoices"]),
                ErrorCode::Invalid,
                format!("at least 1 and minChoices, at most the number of options ({count})"),
            ));
        }
        let mut option_keys = HashSet::new();
        let mut options = Vec::with_capacity(count);
        for (position, option) in group.options.iter().enumerate() {
            let option_path = child(&group_path, &["options", &position.to_string()]);
            let key = key_of(
                option.id,
                option.external_id.as_deref(),
                by_external,
                &option_path,
                &mut option_keys,
                &mut errors,
            );
            let name = super::bounded_text("name", &option.name, 1, super::menus::MAX_NAME_CHARS)
                .map_err(|error| {
                    errors.push(InputError::at(
                        &child(&option_path, &["name"]),
                        error.code,
                        error.message,
                    ));
                })
                .unwrap_or_default();
            let delta = Money::parse_minor(option.price_delta.trim(), currency)
                .filter(|delta| (0..=super::menus::MAX_PRICE).contains(delta));
            let Some(price_delta) = delta else {
                errors.push(InputError::at(
                    &child(&option_path, &["priceDelta"]),
                    ErrorCode::Invalid,
                    format!(
                        "an amount from 0 to {} {currency}",
                        Money::from_minor(super::menus::MAX_PRICE, currency).amount
                    ),
                ));
                continue;
            };
            options.push(CheckedOption {
                key,
                path: option_path,
                name,
                price_delta,
                available: option.available,
            });
        }
        checked.push(CheckedGroup {
            key,
            path: group_path,
            name,
            min_choices: group.min_choices,
            max_choices: group.max_choices,
            options,
        });
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(errors)
    }
}

/// An item's groups, each with its options, in menu order.
pub type Groups = Vec<(menu_option_group::Model, Vec<menu_option::Model>)>;

/// The option groups of `items`, with their options, in menu order: two statements, however
/// many items.
pub async fn groups_of<C: ConnectionTrait>(
    db: &C,
    items: &[i64],
) -> AppResult<HashMap<i64, Groups>> {
    let mut by_item: HashMap<i64, Groups> = HashMap::new();
    if items.is_empty() {
        return Ok(by_item);
    }
    let backend = db.get_database_backend();
    let groups = menu_option_group::Entity::find()
        .filter(one_of(
            menu_option_group::Column::MenuItemId,
            items,
            backend,
        ))
        .order_by_asc(menu_option_group::Column::MenuItemId)
        .order_by_asc(menu_option_group::Column::Position)
        .order_by_asc(menu_option_group::Column::Id)
        .all(db)
        .await?;
    if groups.is_empty() {
        return Ok(by_item);
    }
    let mut options: HashMap<i64, Vec<menu_option::Model>> = HashMap::new();
    for option in menu_option::Entity::find()
        .filter(one_of(menu_option::Column::MenuItemId, items, backend))
        .order_by_asc(menu_option::Column::MenuItemId)
        .order_by_asc(menu_option::Column::GroupId)
        .order_by_asc(menu_option::Column::Position)
        .order_by_asc(menu_option::Column::Id)
        .all(db)
        .await?
    {
        options.entry(option.group_id).or_default().push(option);
    }
    for group in groups {
        let group_options = options.remove(&group.id).unwrap_or_default();
        by_item
            .entry(group.menu_item_id)
            .or_default()
            .push((group, group_options));
    }
    Ok(by_item)
}

fn matches(key: &Key, id: i64, external_id: Option<&String>) -> bool {
    match key {
        Key::Id(wanted) => *wanted == id,
        Key::External(wanted) => external_id == Some(wanted),
        Key::New => false,
    }
}

fn external(key: &Key) -> Option<String> {
    match key {
        Key::External(value) => Some(value.clone()),
        _ => None,
    }
}

/// A list index as a stored position.
pub(crate) fn position(index: usize) -> i32 {
    i32::try_from(index).unwrap_or(i32::MAX)
}

/// Makes `item`'s option groups be `groups`, in that order, inside `txn`. An id that is not
/// one of the item's groups (or of the group's options) is a `NOT_FOUND` error, and the caller
/// rolls back.
pub async fn sync(
    txn: &DatabaseTransaction,
    item: &menu_item::Model,
    groups: &[CheckedGroup],
    now: DateTime<Utc>,
) -> ServiceResult<Changes> {
    let existing = groups_of(txn, &[item.id])
        .await?
        .remove(&item.id)
        .unwrap_or_default();
    sync_from(txn, item, groups, existing, now).await
}

/// [`sync`], given the item's `existing` groups as [`groups_of`] read them in `txn` (an
/// import reads every item's at once).
pub async fn sync_from(
    txn: &DatabaseTransaction,
    item: &menu_item::Model,
    groups: &[CheckedGroup],
    mut existing: Groups,
    now: DateTime<Utc>,
) -> ServiceResult<Changes> {
    let mut changes = Changes::default();
    let mut kept_groups = HashSet::new();
    for (index, group) in groups.iter().enumerate() {
        let found = existing
            .iter()
            .position(|(row, _)| matches(&group.key, row.id, row.external_id.as_ref()));
        let (group_id, mut current_options) = match found {
            Some(at) => {
                let (row, options) = existing.swap_remove(at);
                let differs = row.name != group.name
                    || row.min_choices != group.min_choices
                    || row.max_choices != group.max_choices
                    || row.position != position(index);
                if differs {
                    let mut active: menu_option_group::ActiveModel = row.clone().into();
                    active.name = Set(group.name.clone());
                    active.min_choices = Set(group.min_choices);
                    active.max_choices = Set(group.max_choices);
                    active.position = Set(position(index));
                    active.updated_at = Set(now);
                    active.update(txn).await?;
                    changes.groups.updated += 1;
                }
                (row.id, options)
            }
            None if matches!(group.key, Key::Id(_)) => {
                return Ok(Err(InputError::at(
                    &child(&group.path, &["id"]),
                    ErrorCode::NotFound,
                    "no such option group of this item",
                )));
            }
            None => {
                let row = menu_option_group::ActiveModel {
                    restaurant_id: Set(item.restaurant_id),
                    menu_item_id: Set(item.id),
                    name: Set(group.name.clone()),
                    min_choices: Set(group.min_choices),
                    max_choices: Set(group.max_choices),
                    position: Set(position(index)),
                    external_id: Set(external(&group.key)),
                    created_at: Set(now),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                changes.groups.created += 1;
                (row.id, Vec::new())
            }
        };
        kept_groups.insert(group_id);
        for (index, option) in group.options.iter().enumerate() {
            let found = current_options
                .iter()
                .position(|row| matches(&option.key, row.id, row.external_id.as_ref()));
            match found {
                Some(at) => {
                    let row = current_options.swap_remove(at);
                    let differs = row.name != option.name
                        || row.price_delta != option.price_delta
                        || row.is_available != option.available
                        || row.position != position(index);
                    if differs {
                        let mut active: menu_option::ActiveModel = row.into();
                        active.name = Set(option.name.clone());
                        active.price_delta = Set(option.price_delta);
                        active.is_available = Set(option.available);
                        active.position = Set(position(index));
                        active.update(txn).await?;
                        changes.options.updated += 1;
                    }
                }
                None if matches!(option.key, Key::Id(_)) => {
                    return Ok(Err(InputError::at(
                        &child(&option.path, &["id"]),
                        ErrorCode::NotFound,
                        "no such option of this group",
                    )));
                }
                None => {
                    menu_option::ActiveModel {
                        group_id: Set(group_id),
                        menu_item_id: Set(item.id),
                        name: Set(option.name.clone()),
                        price_delta: Set(option.price_delta),
                        is_available: Set(option.available),
                        position: Set(position(index)),
                        external_id: Set(external(&option.key)),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await?;
                    changes.options.created += 1;
                }
            }
        }
        let gone: Vec<i64> = current_options.iter().map(|row| row.id).collect();
        if !gone.is_empty() {
            changes.options.removed += count(gone.len());
            menu_option::Entity::delete_many()
                .filter(one_of(
                    menu_option::Column::Id,
                    &gone,
                    txn.get_database_backend(),
                ))
                .exec(txn)
                .await?;
        }
    }
    // Groups not named any more go, with their options.
    let gone: Vec<i64> = existing
        .iter()
        .map(|(row, _)| row.id)
        .filter(|id| !kept_groups.contains(id))
        .collect();
    if !gone.is_empty() {
        changes.groups.removed += count(gone.len());
        changes.options.removed += existing
            .iter()
            .map(|(_, options)| count(options.len()))
            .sum::<u32>();
        remove_groups(txn, &gone).await?;
    }
    Ok(Ok(changes))
}

/// Deletes the groups `ids` and their options.
pub async fn remove_groups<C: ConnectionTrait>(txn: &C, ids: &[i64]) -> AppResult<()> {
    let backend = txn.get_database_backend();
    menu_option::Entity::delete_many()
        .filter(one_of(menu_option::Column::GroupId, ids, backend))
        .exec(txn)
        .await?;
    menu_option_group::Entity::delete_many()
        .filter(one_of(menu_option_group::Column::Id, ids, backend))
        .exec(txn)
        .await?;
    Ok(())
}

/// Sets the option groups of the item `item_id` to `groups` (by id: entries without one are
/// new, existing groups and options left out are removed), as its restaurant's owner, staff,
/// an admin or a `menu:write` token of one. Refused, it says every problem [`check`] found
/// in `groups` at once (or the first id that is not the item's), and changes nothing.
pub async fn set_item_options(
    db: &DatabaseConnection,
    viewer: &Viewer,
    item_id: i64,
    groups: &[GroupSpec],
    now: DateTime<Utc>,
) -> AppResult<Result<(menu_item::Model, Changes), Vec<InputError>>> {
    let not_found = || {
        vec![InputError::new(
            "menuItemId",
            ErrorCode::NotFound,
            "no such menu item",
        )]
    };
    let txn = begin_write(db).await?;
    let Some(item) = super::menus::live_item(&txn, item_id).await? else {
        return Ok(Err(not_found()));
    };
    let Some(restaurant) = super::menus::authorize(&txn, viewer, item.restaurant_id).await? else {
        return Ok(Err(not_found()));
    };
    let path = ["optionGroups".to_owned()];
    let checked = match check(groups, &restaurant.currency, &path, false) {
        Ok(checked) => checked,
        Err(errors) => return Ok(Err(errors)),
    };
    let changes = match sync(&txn, &item, &checked, now).await? {
        Ok(changes) => changes,
        Err(error) => return Ok(Err(vec![error])),
    };
    if changes.groups.any() || changes.options.any() {
        super::menus::changed(
            &txn,
            item.restaurant_id,
            "item_options_set",
            &[],
            &[item.id],
            now,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(Ok((item, changes)))
}
