//! `importMenu`: a point-of-sale system sends the whole menu by its own ids.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::types::{Allergen, DietaryTag};
use crate::{
    auth::guards::viewer,
    graphql::{
        payloads::UserError,
        relay::{GlobalId, NodeKind},
        restaurants::types::Restaurant,
    },
    services::{
        menu_import::{self, ImportCategory, ImportItem},
        menu_options::{GroupSpec, OptionSpec, Tally},
    },
};

/// One option, by the integrator's id.
#[derive(InputObject)]
pub struct ImportMenuOptionInput {
    /// The integrator's id of the option, unique within its group (1 to 100 characters).
    pub external_id: String,
    /// 1 to 100 characters.
    pub name: String,
    /// What it adds to the item's price, `"0"` to `"10000.00"` (default `"0"`).
    #[graphql(default_with = "String::from(\"0\")")]
    pub price_delta: String,
    /// Whether it can be chosen (default true).
    #[graphql(default = true)]
    pub available: bool,
}

/// One option group, by the integrator's id.
#[derive(InputObject)]
pub struct ImportMenuOptionGroupInput {
    /// The integrator's id of the group, unique within its item (1 to 100 characters).
    pub external_id: String,
    /// 1 to 100 characters.
    pub name: String,
    /// Fewest options a line must choose (default 0).
    #[graphql(default)]
    pub min_choices: i32,
    /// Most options a line may choose.
    pub max_choices: i32,
    /// 1 to 50 options, in menu order.
    pub options: Vec<ImportMenuOptionInput>,
}

/// One item, by the integrator's id.
#[derive(InputObject)]
pub struct ImportMenuItemInput {
    /// The integrator's id of the item, unique within the menu (1 to 100 characters).
    pub external_id: String,
    /// 1 to 100 characters.
    pub name: String,
    /// At most 1000 characters.
    pub description: Option<String>,
    /// A decimal amount in the restaurant's currency: above 0, at most 10000.00.
    pub price: String,
    /// Dietary tags.
    #[graphql(default)]
    pub dietary_tags: Vec<DietaryTag>,
    /// Allergens it contains.
    #[graphql(default)]
    pub allergens: Vec<Allergen>,
    /// Whether it can be ordered (default true).
    #[graphql(default = true)]
    pub available: bool,
    /// Its option groups, in menu order (default none).
    #[graphql(default)]
    pub option_groups: Vec<ImportMenuOptionGroupInput>,
}

/// One category, by the integrator's id, with its items in menu order.
#[derive(InputObject)]
pub struct ImportMenuCategoryInput {
    /// The integrator's id of the category, unique within the menu (1 to 100 characters).
    pub external_id: String,
    /// 1 to 100 characters.
    pub name: String,
    /// Its items, in menu order.
    pub items: Vec<ImportMenuItemInput>,
}

/// A restaurant's whole menu.
#[derive(InputObject)]
pub struct ImportMenuInput {
    /// The restaurant.
    pub restaurant_id: ID,
    /// Every category of the menu (at most 100, with at most 2000 items in all), in menu
    /// order. Whatever the menu has that is not named here is removed.
    pub categories: Vec<ImportMenuCategoryInput>,
}

/// How many entries of a kind an import created, updated and removed.
#[derive(SimpleObject)]
pub struct MenuChangeCount {
    /// New entries.
    pub created: u32,
    /// Entries that differed and were changed.
    pub updated: u32,
    /// Entries that were on the menu and not in the import.
    pub removed: u32,
}

impl From<Tally> for MenuChangeCount {
    fn from(tally: Tally) -> Self {
        Self {
            created: tally.created,
            updated: tally.updated,
            removed: tally.removed,
        }
    }
}

/// What an import changed: all zeros when the menu already matched.
#[derive(SimpleObject)]
pub struct MenuImportSummary {
    /// Categories.
    pub categories: MenuChangeCount,
    /// Items.
    pub items: MenuChangeCount,
    /// Option groups.
    pub option_groups: MenuChangeCount,
    /// Options.
    pub options: MenuChangeCount,
}

/// The outcome of an import.
#[derive(SimpleObject)]
pub struct ImportMenuPayload {
    /// The restaurant, with its menu as it is now; null on user errors.
    pub restaurant: Option<Restaurant>,
    /// What changed; null on user errors.
    pub summary: Option<MenuImportSummary>,
    /// Every problem found, each at its entry's path (`["input", "categories", "0", "items",
    /// "3", "price"]`); when there is any, nothing was changed.
    pub user_errors: Vec<UserError>,
}

fn groups(groups: Vec<ImportMenuOptionGroupInput>) -> Vec<GroupSpec> {
    groups
        .into_iter()
        .map(|group| GroupSpec {
            id: None,
            external_id: Some(group.external_id),
            name: group.name,
            min_choices: group.min_choices,
            max_choices: group.max_choices,
            options: group
                .options
                .into_iter()
                .map(|option| OptionSpec {
                    id: None,
                    external_id: Some(option.external_id),
                    name: option.name,
                    price_delta: option.price_delta,
                    available: option.available,
                })
                .collect(),
        })
        .collect()
}

/// Importing menus.
#[derive(Default)]
pub struct MenuImportMutation;

#[Object]
impl MenuImportMutation {
    /// Makes a restaurant's menu match the one given, as one transaction: entries are matched
    /// by `externalId`, changed where they differ, created when new, and what the menu has
    /// that the import does not name (entries made by hand included) is removed. Running it
    /// again with the same menu changes nothing. For the restaurant's owner and staff and
    /// admins; API tokens need `menu:write`.
    async fn import_menu(
        &self,
        ctx: &Context<'_>,
        input: ImportMenuInput,
    ) -> Result<ImportMenuPayload> {
        let restaurant_id = GlobalId::decode_as(&input.restaurant_id, NodeKind::Restaurant)?;
        let categories: Vec<ImportCategory> = input
            .categories
            .into_iter()
            .map(|category| ImportCategory {
                external_id: category.external_id,
                name: category.name,
                items: category
                    .items
                    .into_iter()
                    .map(|item| ImportItem {
                        external_id: item.external_id,
                        name: item.name,
                        description: item.description,
                        price: item.price,
                        dietary_tags: item
                            .dietary_tags
                            .into_iter()
                            .map(DietaryTag::stored)
                            .collect(),
                        allergens: item.allergens.into_iter().map(Allergen::stored).collect(),
                        available: item.available,
                        option_groups: groups(item.option_groups),
                    })
                    .collect(),
            })
            .collect();
        let db = ctx.data::<DatabaseConnection>()?;
        let outcome =
            menu_import::import(db, viewer(ctx)?, restaurant_id, &categories, Utc::now()).await?;
        Ok(match outcome {
            Ok(summary) => {
                if summary != menu_import::Summary::default() {
                    super::mutation::announce(ctx, restaurant_id).await;
                }
                ImportMenuPayload {
                    restaurant: Some(super::types::load_restaurant(ctx, restaurant_id).await?),
                    summary: Some(MenuImportSummary {
                        categories: summary.categories.into(),
                        items: summary.items.into(),
                        option_groups: summary.option_groups.into(),
                        options: summary.options.into(),
                    }),
                    user_errors: Vec::new(),
                }
            }
            Err(errors) => ImportMenuPayload {
                restaurant: None,
                summary: None,
                user_errors: errors.into_iter().map(UserError::from).collect(),
            },
        })
    }
}
