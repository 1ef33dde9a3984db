//! The per-request set of DataLoaders. Every relation resolves through one of these, so the
//! number of SQL statements grows with the depth of a query, not with the number of rows.

use std::{
    collections::HashMap,
    hash::Hash,
    marker::PhantomData,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_graphql::dataloader::{DataLoader, Loader};
use entities::{
    FromRowByPosition, api_token, delivery, menu_category, menu_item, order, order_event,
    order_item, restaurant, review, user,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, Iterable, ModelTrait, PrimaryKeyToColumn,
    QueryFilter, QueryTrait, Value,
};
use tracing::Instrument;

use super::relay::{Page, PageArgs};
use super::{
    menu::loaders::{CategoriesByRestaurant, ItemsByRestaurant, OptionGroupsByItem},
    orders::loaders::{DeliveryPages, ManyByOrder, OneByOrder, OrderCounts, OrderPages},
    restaurants::loaders::{
        ClosuresByRestaurant, CuisinesByRestaurant, OpeningHoursByRestaurant, WorkplacesByUser,
    },
    reviews::loaders::ReviewPages,
};
use crate::{
    db::StatementCounter,
    error::{AppError, AppResult},
    metrics::METRICS,
};

/// Errors of loaders: already converted, so resolvers can `?` them.
pub type LoadError = async_graphql::Error;

/// Loads rows of `E` by primary key.
pub struct ById<E> {
    db: DatabaseConnection,
    entity: PhantomData<fn() -> E>,
}

impl<E> ById<E> {
    fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            entity: PhantomData,
        }
    }
}

impl<E> Loader<i64> for ById<E>
where
    E: EntityTrait,
    E::Model: FromRowByPosition + Sync,
{
    type Value = Arc<E::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let column = E::PrimaryKey::iter()
            .next()
            .expect("every entity has a primary key")
            .into_column();
        let statement = E::find()
            .filter(crate::db::one_of(
                column,
                keys,
                self.db.get_database_backend(),
            ))
            .build(self.db.get_database_backend());
        let rows = self
            .db
            .query_all_raw(statement)
            .await
            .map_err(AppError::from)?;
        let rows = E::Model::from_rows(&rows).map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match row.get(column) {
                Value::BigInt(Some(id)) => Some((id, Arc::new(row))),
                _ => None,
            })
            .collect())
    }
}

/// Groups `rows` (already in display order) by `key`.
pub fn group_by<K: Hash + Eq, V>(
    rows: impl IntoIterator<Item = V>,
    key: impl Fn(&V) -> K,
) -> HashMap<K, Arc<[V]>> {
    let mut groups: HashMap<K, Vec<V>> = HashMap::new();
    for row in rows {
        groups.entry(key(&row)).or_default().push(row);
    }
    groups
        .into_iter()
        .map(|(key, rows)| (key, Arc::from(rows)))
        .collect()
}

/// Pages of many parents (a restaurant's reviews or orders, a courier's deliveries), for the
/// loaders of pages under a list: keys are split into a page shape (the page arguments, and
/// whatever else selects the rows) and a parent id, the parents of one shape are read together,
/// and each parent's rows become its page.
pub trait ParentPages: Send + Sync + 'static {
    type Key: Hash + Eq + Clone + Send + Sync + 'static;
    type Shape: Hash + Eq + Send + Sync;
    type Row: Send + Sync + 'static;

    /// The shape and the parent of `key`.
    fn parts(key: &Self::Key) -> (Self::Shape, i64);

    /// The key of `parent`'s page of `shape`.
    fn key(shape: &Self::Shape, parent: i64) -> Self::Key;

    /// The page arguments of `shape`.
    fn args(shape: &Self::Shape) -> &PageArgs;

    /// The rows of `parents` (read in page direction, `limit + 1` at most each), by parent.
    fn read(
        &self,
        shape: &Self::Shape,
        parents: &[i64],
    ) -> impl Future<Output = AppResult<HashMap<i64, Vec<Self::Row>>>> + Send;
}

/// The DataLoader of a `ParentPages`: one `read` per shape in a batch.
pub struct Pages<P>(pub P);

impl<P: ParentPages> Loader<P::Key> for Pages<P> {
    type Value = Arc<Page<P::Row>>;
    type Error = LoadError;

    async fn load(&self, keys: &[P::Key]) -> Result<HashMap<P::Key, Self::Value>, Self::Error> {
        let mut shapes: HashMap<P::Shape, Vec<i64>> = HashMap::new();
        for key in keys {
            let (shape, parent) = P::parts(key);
            shapes.entry(shape).or_default().push(parent);
        }
        let mut pages = HashMap::with_capacity(keys.len());
        for (shape, parents) in shapes {
            let mut rows = self.0.read(&shape, &parents).await?;
            for parent in parents {
                let mine = rows.remove(&parent).unwrap_or_default();
                let page = Page::from_rows(mine, P::args(&shape));
                pages.insert(P::key(&shape, parent), Arc::new(page));
            }
        }
        Ok(pages)
    }
}

/// A loader that reports the size of each batch to the `dataloader_batch_size` metric.
pub struct Measured<T> {
    inner: T,
    /// The `loader` label.
    name: &'static str,
}

impl<K, T> Loader<K> for Measured<T>
where
    K: Send + Sync + Hash + Eq + Clone + 'static,
    T: Loader<K>,
{
    type Value = T::Value;
    type Error = T::Error;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, Self::Value>, Self::Error> {
        METRICS
            .loader_batch_size
            .with_label_values(&[self.name])
            .observe(keys.len() as f64);
        self.inner.load(keys).await
    }
}

/// A DataLoader that tells its request each time a key is asked for, so the request's batches
/// wait until every sibling resolver has asked (see `settle`).
pub struct Batched<T> {
    loader: DataLoader<Measured<T>>,
    requested: Arc<AtomicUsize>,
}

impl<T: Send + Sync + 'static> Batched<T> {
    /// Loads one value, batched with every other key asked for in the same turn.
    pub async fn load_one<K>(&self, key: K) -> Result<Option<T::Value>, T::Error>
    where
        Measured<T>: Loader<K, Value = T::Value, Error = T::Error>,
        T: Loader<K>,
        K: Send + Sync + Hash + Eq + Clone + 'static,
    {
        self.requested.fetch_add(1, Ordering::Relaxed);
        // Boxed: async-graphql gives every field of an object a future the size of the largest
        // of the type's resolvers, and a DataLoader's is some hundreds of bytes; boxed, only
        // the fields that do load pay for it.
        Box::pin(self.loader.load_one(key)).await
    }
}

/// Holds a batch back until a whole scheduler turn passes in which the request asked for no
/// new key. async-graphql resolves a long list in slices (its join yields every 32 items), so
/// a batch that fired on a timer could cut one level in two and add statements depending on
/// how fast the machine is; waiting for the request to go quiet makes batches follow the
/// shape of the query instead.
async fn settle(requested: &AtomicUsize) {
    let mut seen = requested.load(Ordering::Relaxed);
    loop {
        tokio::task::yield_now().await;
        let now = requested.load(Ordering::Relaxed);
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// All DataLoaders of one request. Made fresh per request so nothing is cached across viewers.
pub struct Loaders {
    pub restaurants: Batched<ById<restaurant::Entity>>,
    pub menu_categories: Batched<ById<menu_category::Entity>>,
    pub menu_items: Batched<ById<menu_item::Entity>>,
    pub reviews: Batched<ById<review::Entity>>,
    pub users: Batched<ById<user::Entity>>,
    pub api_tokens: Batched<ById<api_token::Entity>>,
    pub orders: Batched<ById<order::Entity>>,
    pub deliveries: Batched<ById<delivery::Entity>>,
    pub items_by_order: Batched<ManyByOrder<order_item::Entity>>,
    pub events_by_order: Batched<ManyByOrder<order_event::Entity>>,
    pub delivery_by_order: Batched<OneByOrder<delivery::Entity>>,
    pub review_by_order: Batched<OneByOrder<review::Entity>>,
    pub cuisines: Batched<CuisinesByRestaurant>,
    pub opening_hours: Batched<OpeningHoursByRestaurant>,
    pub closures: Batched<ClosuresByRestaurant>,
    pub categories_by_restaurant: Batched<CategoriesByRestaurant>,
    pub items_by_restaurant: Batched<ItemsByRestaurant>,
    pub option_groups: Batched<OptionGroupsByItem>,
    pub images: Batched<crate::graphql::media::ImagesByTarget>,
    pub review_pages: Batched<Pages<ReviewPages>>,
    pub order_pages: Batched<Pages<OrderPages>>,
    pub order_counts: Batched<OrderCounts>,
    pub delivery_pages: Batched<Pages<DeliveryPages>>,
    pub workplaces: Batched<WorkplacesByUser>,
}

impl Loaders {
    /// Loaders over `db` whose batch tasks count their statements in `counter` and log in the
    /// request's span.
    pub fn new(db: &DatabaseConnection, counter: &StatementCounter) -> Self {
        fn loader<T: Send + Sync + 'static>(
            name: &'static str,
            value: T,
            counter: &StatementCounter,
            requested: &Arc<AtomicUsize>,
        ) -> Batched<T> {
            let (counter, waiting) = (counter.clone(), requested.clone());
            // The histogram is looked up per batch (a few per request), not per loader made.
            let measured = Measured { inner: value, name };
            let loader = DataLoader::new(measured, move |batch| {
                let (counter, waiting) = (counter.clone(), waiting.clone());
                tokio::spawn(
                    async move {
                        settle(&waiting).await;
                        counter.scope(batch).await;
                    }
                    .in_current_span(),
                )
            })
            // `settle` decides when a batch is complete; no timer is needed.
            .delay(Duration::ZERO);
            Batched {
                loader,
                requested: requested.clone(),
            }
        }
        let requested = Arc::new(AtomicUsize::new(0));
        Self {
            restaurants: loader("restaurants", ById::new(db.clone()), counter, &requested),
            menu_categories: loader(
                "menu_categories",
                ById::new(db.clone()),
                counter,
                &requested,
            ),
            menu_items: loader("menu_items", ById::new(db.clone()), counter, &requested),
            reviews: loader("reviews", ById::new(db.clone()), counter, &requested),
            users: loader("users", ById::new(db.clone()), counter, &requested),
            api_tokens: loader("api_tokens", ById::new(db.clone()), counter, &requested),
            orders: loader("orders", ById::new(db.clone()), counter, &requested),
            deliveries: loader("deliveries", ById::new(db.clone()), counter, &requested),
            items_by_order: loader(
                "items_by_order",
                ManyByOrder::new(db.clone()),
                counter,
                &requested,
            ),
            events_by_order: loader(
                "events_by_order",
                ManyByOrder::new(db.clone()),
                counter,
                &requested,
            ),
            delivery_by_order: loader(
                "delivery_by_order",
                OneByOrder::new(db.clone()),
                counter,
                &requested,
            ),
            review_by_order: loader(
                "review_by_order",
                OneByOrder::new(db.clone()),
                counter,
                &requested,
            ),
            cuisines: loader(
                "cuisines",
                CuisinesByRestaurant(db.clone()),
                counter,
                &requested,
            ),
            opening_hours: loader(
                "opening_hours",
                OpeningHoursByRestaurant(db.clone()),
                counter,
                &requested,
            ),
            closures: loader(
                "closures",
                ClosuresByRestaurant(db.clone()),
                counter,
                &requested,
            ),
            categories_by_restaurant: loader(
                "categories_by_restaurant",
                CategoriesByRestaurant(db.clone()),
                counter,
                &requested,
            ),
            images: loader(
                "images",
                crate::graphql::media::ImagesByTarget(db.clone()),
                counter,
                &requested,
            ),
            option_groups: loader(
                "option_groups",
                OptionGroupsByItem(db.clone()),
                counter,
                &requested,
            ),
            items_by_restaurant: loader(
                "items_by_restaurant",
                ItemsByRestaurant(db.clone()),
                counter,
                &requested,
            ),
            review_pages: loader(
                "review_pages",
                Pages(ReviewPages(db.clone())),
                counter,
                &requested,
            ),
            order_pages: loader(
                "order_pages",
                Pages(OrderPages(db.clone())),
                counter,
                &requested,
            ),
            order_counts: loader("order_counts", OrderCounts(db.clone()), counter, &requested),
            delivery_pages: loader(
                "delivery_pages",
                Pages(DeliveryPages(db.clone())),
                counter,
                &requested,
            ),
            workplaces: loader(
                "workplaces",
                WorkplacesByUser(db.clone()),
                counter,
                &requested,
            ),
        }
    }
}
