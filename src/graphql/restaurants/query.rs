//! `restaurants` and `restaurant` queries.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::Utc;
use entities::{FromRowByPosition as _, restaurant};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryTrait,
};

use super::types::{Restaurant, RestaurantConnection};
use crate::{
    error::AppError,
    graphql::{
        common::{GeoPointInput, OrderDirection},
        loaders::Loaders,
        relay::{GlobalId, NodeKind, PageArgs},
    },
    services::restaurants::{self as service, Columns, Ordering, RestaurantFilter, SortField},
};

/// Which restaurants to list; all parts must match.
#[derive(Debug, Default, InputObject)]
#[graphql(name = "RestaurantFilter")]
pub struct RestaurantFilterInput {
    /// Restaurants serving any of these cuisines (case-insensitive), at most 20.
    pub cuisines: Option<Vec<String>>,
    /// Text the name or the description contains (case-insensitive), at most 100 characters.
    pub search: Option<String>,
    /// `true`: only restaurants that would take an order right now; `false`: only those that
    /// would not (closed by their hours, or not taking orders); null or absent: both.
    pub open_now: Option<bool>,
    /// The point distances are measured from; needed by `withinKm` and by DISTANCE ordering.
    pub near: Option<GeoPointInput>,
    /// Only restaurants within this many kilometres of `near` (at most 500).
    pub within_km: Option<f64>,
    /// Only restaurants that deliver to this point (it lies within their
    /// `deliveryRadiusMeters`): the ones `placeOrder` would take an order to it from.
    pub delivers_to: Option<GeoPointInput>,
}

impl RestaurantFilterInput {
    fn into_filter(self) -> Result<RestaurantFilter, AppError> {
        Ok(RestaurantFilter {
            cuisines: self.cuisines.unwrap_or_default(),
            search: self.search,
            open_now: self.open_now,
            near: self.near.map(GeoPointInput::to_point).transpose()?,
            within_km: self.within_km,
            delivers_to: self.delivers_to.map(GeoPointInput::to_point).transpose()?,
        })
    }
}

/// What to sort restaurants by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum RestaurantOrderField {
    /// Alphabetically by name (default direction ASC).
    Name,
    /// By average rating (default direction DESC).
    Rating,
    /// By distance from `filter.near` (default direction ASC).
    Distance,
}

/// Sort order of a restaurant list; ties are broken by ID.
#[derive(Debug, Clone, Copy, InputObject)]
pub struct RestaurantOrder {
    /// The field to sort by.
    pub field: RestaurantOrderField,
    /// Sort direction; each field has a natural default.
    pub direction: Option<OrderDirection>,
}

impl RestaurantOrder {
    fn ordering(self) -> Ordering {
        let (field, natural_ascending) = match self.field {
            RestaurantOrderField::Name => (SortField::Name, true),
            RestaurantOrderField::Rating => (SortField::Rating, false),
            RestaurantOrderField::Distance => (SortField::Distance, true),
        };
        Ordering {
            field,
            ascending: self
                .direction
                .map_or(natural_ascending, |d| d == OrderDirection::Asc),
        }
    }
}

/// Fields of `Restaurant` that need more than its card's columns.
const BEYOND_THE_CARD: [&str; 8] = [
    "description",
    "address",
    "location",
    "distanceKm",
    "phone",
    "deliveryRadiusMeters",
    "minimumOrder",
    "preparationMinutes",
];

/// Fields of `Restaurant` that need nothing of its card but its id, name and rating (what
/// loaders find by its id counts as nothing): a list whose nodes ask only these reads the
/// brief. Any other field, including one added later, reads the whole card.
const ON_THE_BRIEF: [&str; 11] = [
    "__typename",
    "id",
    "name",
    "rating",
    "cuisines",
    "logo",
    "cover",
    "openingHours",
    "menu",
    "orders",
    "reviews",
];

/// The columns a restaurant list resolving in `list` reads: whole rows when its nodes select
/// a field beyond the card (through fragments and aliases; `@skip`/`@include` are applied
/// before execution, so a skipped field does not count), the brief when they select only
/// fields [`ON_THE_BRIEF`], else the card's. Were a field beyond what was read ever reached,
/// it would read the row through the loader: one more statement, never a wrong answer.
fn columns_for(list: &async_graphql::Lookahead<'_>) -> Columns {
    let nodes = [list.field("edges").field("node"), list.field("nodes")];
    if BEYOND_THE_CARD
        .iter()
        .any(|field| nodes.iter().any(|node| node.field(field).exists()))
    {
        return Columns::Whole;
    }
    let brief = nodes
        .iter()
        .flat_map(async_graphql::Lookahead::selection_fields)
        .all(|node| {
            node.selection_set()
                .all(|field| ON_THE_BRIEF.contains(&field.name()))
        });
    if brief { Columns::Brief } else { Columns::Card }
}

/// Browsing restaurants.
#[derive(Default)]
pub struct RestaurantQuery;

/// Browsing restaurants.
#[Object]
impl RestaurantQuery {
    /// Restaurants, filtered and sorted, a page at a time (by name unless `orderBy` says).
    #[expect(
        clippy::too_many_arguments,
        reason = "the Relay connection arguments plus filter and order"
    )]
    #[graphql(
        complexity = "crate::graphql::relay::connection_cost(first, last, 20, child_complexity)"
    )]
    async fn restaurants(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Restaurants after this cursor, with `first`.")] after: Option<String>,
        #[graphql(desc = "Restaurants before this cursor, with `last`.")] before: Option<String>,
        #[graphql(desc = "How many from the start, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "How many from the end, at most 100.")] last: Option<i32>,
        #[graphql(desc = "Which restaurants to list.")] filter: Option<RestaurantFilterInput>,
        #[graphql(desc = "Sort order.")] order_by: Option<RestaurantOrder>,
    ) -> Result<RestaurantConnection> {
        let args = PageArgs::new(first, after, last, before, 20)?;
        let filter = filter.unwrap_or_default().into_filter()?;
        let ordering = order_by
            .unwrap_or(RestaurantOrder {
                field: RestaurantOrderField::Name,
                direction: None,
            })
            .ordering();
        let db = ctx.data::<DatabaseConnection>()?;
        let columns = columns_for(&ctx.look_ahead());
        let page = service::list(db, &filter, ordering, &args, columns, Utc::now()).await?;
        Ok(RestaurantConnection { page, args, filter })
    }

    /// One restaurant by ID or by slug (give exactly one); null when there is none.
    async fn restaurant(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Global ID of the restaurant.")] id: Option<ID>,
        #[graphql(desc = "Slug of the restaurant, e.g. `trattoria-roma`.")] slug: Option<String>,
    ) -> Result<Option<Restaurant>> {
        match (id, slug) {
            (Some(id), None) => {
                let id = GlobalId::decode_as(&id, NodeKind::Restaurant)?;
                let restaurant = ctx.data::<Loaders>()?.restaurants.load_one(id).await?;
                Ok(restaurant.map(Restaurant::from))
            }
            (None, Some(slug)) => {
                let db = ctx.data::<DatabaseConnection>()?;
                let statement = restaurant::Entity::find()
                    .filter(restaurant::Column::Slug.eq(slug))
                    .build(db.get_database_backend());
                let row = db.query_one_raw(statement).await.map_err(AppError::from)?;
                let restaurant = row
                    .map(|row| restaurant::Model::read(&row, true))
                    .transpose()
                    .map_err(AppError::from)?;
                Ok(restaurant.map(|r| Restaurant::from(Arc::new(r))))
            }
            _ => Err(AppError::bad_input("give exactly one of `id` and `slug`").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};

    use super::{Columns, columns_for};

    /// What `columns_for` decided for the list.
    type Decision = Arc<Mutex<Option<Columns>>>;

    /// A restaurant with one field on the card and one beyond it.
    #[derive(SimpleObject, Default)]
    struct Place {
        name: String,
        slug: String,
        description: String,
    }

    #[derive(SimpleObject, Default)]
    struct PlaceEdge {
        node: Place,
    }

    #[derive(SimpleObject, Default)]
    struct Places {
        edges: Vec<PlaceEdge>,
        nodes: Vec<Place>,
    }

    struct Query;

    #[Object]
    impl Query {
        async fn restaurants(&self, ctx: &Context<'_>) -> Places {
            *ctx.data_unchecked::<Decision>().lock().unwrap() =
                Some(columns_for(&ctx.look_ahead()));
            Places::default()
        }
    }

    async fn decided(query: &str) -> Columns {
        let schema = Schema::new(Query, EmptyMutation, EmptySubscription);
        let decision = Decision::default();
        let response = schema
            .execute(async_graphql::Request::new(query).data(decision.clone()))
            .await;
        assert!(response.errors.is_empty(), "{query}: {:?}", response.errors);
        decision.lock().unwrap().expect("the list resolved")
    }

    #[tokio::test]
    async fn a_list_reads_the_brief_the_card_or_whole_rows_as_its_nodes_ask() {
        for (query, columns) in [
            (
                "{ restaurants { edges { node { name } } nodes { name } } }",
                Columns::Brief,
            ),
            (
                "{ restaurants { edges { node { name } } nodes { name slug } } }",
                Columns::Card,
            ),
            (
                "{ restaurants { edges { node { ... on Place { slug } } } } }",
                Columns::Card,
            ),
            (
                "{ restaurants { edges { node { ...P } } } } fragment P on Place { __typename name slug }",
                Columns::Card,
            ),
            (
                "{ restaurants { edges { node { description } } } }",
                Columns::Whole,
            ),
            (
                "{ restaurants { nodes { name description } } }",
                Columns::Whole,
            ),
            (
                "{ restaurants { edges { n: node { d: description } } } }",
                Columns::Whole,
            ),
            (
                "{ restaurants { edges { ...E } } } fragment E on PlaceEdge { node { ... on Place { description } } }",
                Columns::Whole,
            ),
            // Skipped fields are gone before execution, included ones stay.
            (
                "{ restaurants { edges { node { description @skip(if: true) name } } } }",
                Columns::Brief,
            ),
            (
                "{ restaurants { edges { node { slug @skip(if: true) name } } } }",
                Columns::Brief,
            ),
            (
                "{ restaurants { edges { node { name description @include(if: true) } } } }",
                Columns::Whole,
            ),
            // A field of that name elsewhere is not the nodes'.
            ("{ restaurants { nodes { name } } }", Columns::Brief),
        ] {
            assert_eq!(decided(query).await, columns, "{query}");
        }
    }
}
