//! What hangs off an order: its lines and events (many per order, oldest first), its delivery
//! and its review (at most one each); and pages of orders of many restaurants or customers.

use std::{collections::HashMap, marker::PhantomData, sync::Arc};

use async_graphql::dataloader::Loader;
use entities::{
    DeliveryStatus, FromRowByPosition, OrderStatus, delivery, order, order_event, order_item,
    review,
};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    IdenStatic, Iterable, QueryFilter, QueryOrder, QuerySelect, Statement, sea_query::Expr,
};
use serde::{Deserialize, Serialize};

use crate::{
    db::{Params, one_of},
    error::{AppError, AppResult},
    graphql::{
        loaders::{LoadError, ParentPages, group_by},
        relay::{Direction, PageArgs, decode_cursor},
    },
};

/// A table whose rows belong to an order.
pub trait OfOrder: EntityTrait<Model: Sync> {
    /// The column holding the order id.
    const ORDER_ID: Self::Column;
    /// The column rows are listed by, oldest first.
    const ORDER_BY: Self::Column;
    /// The order a row belongs to.
    fn order_id(row: &Self::Model) -> i64;
}

macro_rules! of_order {
    ($($entity:ident),*) => {$(
        impl OfOrder for $entity::Entity {
            const ORDER_ID: Self::Column = $entity::Column::OrderId;
            const ORDER_BY: Self::Column = $entity::Column::Id;
            fn order_id(row: &Self::Model) -> i64 {
                row.order_id
            }
        }
    )*};
}

of_order!(order_item, order_event, delivery, review);

async fn rows_of<E: OfOrder>(
    db: &DatabaseConnection,
    keys: &[i64],
) -> Result<Vec<E::Model>, LoadError> {
    Ok(E::find()
        .filter(crate::db::one_of(
            E::ORDER_ID,
            keys,
            db.get_database_backend(),
        ))
        .order_by_asc(E::ORDER_BY)
        .all(db)
        .await
        .map_err(AppError::from)?)
}

/// All rows of `E` of each order, oldest first (lines, events).
pub struct ManyByOrder<E>(DatabaseConnection, PhantomData<fn() -> E>);

impl<E> ManyByOrder<E> {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(db, PhantomData)
    }
}

impl<E: OfOrder> Loader<i64> for ManyByOrder<E> {
    type Value = Arc<[E::Model]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        Ok(group_by(rows_of::<E>(&self.0, keys).await?, E::order_id))
    }
}

/// The one row of `E` of each order, if any (delivery, review).
pub struct OneByOrder<E>(DatabaseConnection, PhantomData<fn() -> E>);

impl<E> OneByOrder<E> {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(db, PhantomData)
    }
}

impl<E: OfOrder> Loader<i64> for OneByOrder<E> {
    type Value = Arc<E::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        Ok(rows_of::<E>(&self.0, keys)
            .await?
            .into_iter()
            .map(|row| (E::order_id(&row), Arc::new(row)))
            .collect())
    }
}

/// Whose orders a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderOwner {
    Customer(i64),
    Restaurant(i64),
}

impl OrderOwner {
    fn id(self) -> i64 {
        match self {
            Self::Customer(id) | Self::Restaurant(id) => id,
        }
    }

    /// The same kind of owner with another id.
    fn with_id(self, id: i64) -> Self {
        match self {
            Self::Customer(_) => Self::Customer(id),
            Self::Restaurant(_) => Self::Restaurant(id),
        }
    }

    fn column(self) -> order::Column {
        match self {
            Self::Customer(_) => order::Column::CustomerId,
            Self::Restaurant(_) => order::Column::RestaurantId,
        }
    }

    fn of(self, order: &order::Model) -> i64 {
        match self {
            Self::Customer(_) => order.customer_id,
            Self::Restaurant(_) => order.restaurant_id,
        }
    }
}

/// One owner's page of orders, newest first, with `status` when given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrderPageKey {
    pub owner: OrderOwner,
    pub status: Option<OrderStatus>,
    pub args: PageArgs,
}

/// Pages of orders of many owners (restaurants or customers) in one statement per page shape,
/// each owner's page read through its `(owner, id)` or `(owner, status, id)` index: at most
/// `limit + 1` rows per owner.
pub struct OrderPages(pub DatabaseConnection);

impl ParentPages for OrderPages {
    type Key = OrderPageKey;
    /// The key with owner id 0, standing for all owners of its kind.
    type Shape = OrderPageKey;
    type Row = Arc<order::Model>;

    fn parts(key: &OrderPageKey) -> (OrderPageKey, i64) {
        let shape = OrderPageKey {
            owner: key.owner.with_id(0),
            ..key.clone()
        };
        (shape, key.owner.id())
    }

    fn key(shape: &OrderPageKey, owner: i64) -> OrderPageKey {
        OrderPageKey {
            owner: shape.owner.with_id(owner),
            ..shape.clone()
        }
    }

    fn args(shape: &OrderPageKey) -> &PageArgs {
        &shape.args
    }

    /// Each owner's rows of the page `shape` asks for, in page direction.
    async fn read(
        &self,
        shape: &OrderPageKey,
        owners: &[i64],
    ) -> AppResult<HashMap<i64, Vec<Arc<order::Model>>>> {
        // Newest first is id descending; reading backwards walks it from the oldest.
        let forward = shape.args.direction == Direction::Forward;
        let (direction, beyond) = if forward { ("DESC", "<") } else { ("ASC", ">") };
        let backend = self.0.get_database_backend();
        let postgres = backend == DbBackend::Postgres;
        let mut params = Params::new(backend);
        let owners_param = params.push_ids(owners);
        let status = shape
            .status
            .map(|status| format!(" AND status = {}", params.push(status.to_value())))
            .unwrap_or_default();
        let after = match &shape.args.cursor {
            Some(cursor) => {
                let id: i64 = decode_cursor(cursor)?;
                format!(" AND id {beyond} {}", params.push(id))
            }
            None => String::new(),
        };
        let limit = params.push(shape.args.limit + 1);
        let owner = shape.owner.column().as_str();
        let columns = order::Column::iter()
            .map(|column| format!("o.{}", column.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let page = |select: &str, owner_id: &str| {
            format!(
                "SELECT {select} FROM orders WHERE {owner} = {owner_id}{status}{after} \
                 ORDER BY id {direction} LIMIT {limit}"
            )
        };
        let sql = if postgres {
            format!(
                "SELECT {columns} FROM unnest(CAST({owners_param} AS bigint[])) AS p(id) \
                 CROSS JOIN LATERAL ({}) AS o ORDER BY o.{owner}, o.id {direction}",
                page("*", "p.id")
            )
        } else {
            format!(
                "SELECT {columns} FROM json_each({owners_param}) AS p JOIN orders AS o \
                 ON o.id IN ({}) ORDER BY o.{owner}, o.id {direction}",
                page("id", "p.value")
            )
        };
        let rows = self
            .0
            .query_all_raw(Statement::from_sql_and_values(backend, sql, params.values))
            .await?;
        // The select lists `Column::iter()`, in order.
        let orders = order::Model::from_rows(&rows)?;
        let mut grouped: HashMap<i64, Vec<Arc<order::Model>>> = HashMap::new();
        for order in orders {
            grouped
                .entry(shape.owner.of(&order))
                .or_default()
                .push(Arc::new(order));
        }
        Ok(grouped)
    }
}

/// How many orders each owner has (with the status when given), one statement per kind of
/// owner and status.
pub struct OrderCounts(pub DatabaseConnection);

impl Loader<(OrderOwner, Option<OrderStatus>)> for OrderCounts {
    type Value = u64;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[(OrderOwner, Option<OrderStatus>)],
    ) -> Result<HashMap<(OrderOwner, Option<OrderStatus>), u64>, Self::Error> {
        let mut shapes: HashMap<(OrderOwner, Option<OrderStatus>), Vec<i64>> = HashMap::new();
        for (owner, status) in keys {
            shapes
                .entry((owner.with_id(0), *status))
                .or_default()
                .push(owner.id());
        }
        let backend = self.0.get_database_backend();
        let mut counts = HashMap::with_capacity(keys.len());
        for ((kind, status), owners) in shapes {
            let column = kind.column();
            let mut query = order::Entity::find()
                .select_only()
                .column(column)
                .expr(Expr::cust("COUNT(*)"))
                .filter(one_of(column, &owners, backend))
                .group_by(column);
            if let Some(status) = status {
                query = query.filter(order::Column::Status.eq(status));
            }
            let found: HashMap<i64, i64> = query
                .into_tuple::<(i64, i64)>()
                .all(&self.0)
                .await
                .map_err(AppError::from)?
                .into_iter()
                .collect();
            for owner in owners {
                let n = found.get(&owner).copied().unwrap_or(0);
                counts.insert((kind.with_id(owner), status), u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(counts)
    }
}

/// Where a delivery is in a courier's list: active ones (claimed, picked up) first, then the
/// rest, each newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCursor {
    /// 0 for an active delivery, 1 for one that is over.
    #[serde(rename = "a")]
    pub rank: u8,
    pub id: i64,
}

impl From<&delivery::Model> for DeliveryCursor {
    fn from(delivery: &delivery::Model) -> Self {
        let active = matches!(
            delivery.status,
            DeliveryStatus::Claimed | DeliveryStatus::PickedUp
        );
        Self {
            rank: u8::from(!active),
            id: delivery.id,
        }
    }
}

/// The rank of `DeliveryCursor` in SQL.
const DELIVERY_RANK: &str = "(CASE WHEN status IN ('CLAIMED', 'PICKED_UP') THEN 0 ELSE 1 END)";

/// One courier's page of deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryPageKey {
    pub courier_id: i64,
    pub args: PageArgs,
}

/// Pages of deliveries of many couriers, one statement per page shape, at most `limit + 1`
/// rows per courier.
pub struct DeliveryPages(pub DatabaseConnection);

impl ParentPages for DeliveryPages {
    type Key = DeliveryPageKey;
    type Shape = PageArgs;
    type Row = Arc<delivery::Model>;

    fn parts(key: &DeliveryPageKey) -> (PageArgs, i64) {
        (key.args.clone(), key.courier_id)
    }

    fn key(args: &PageArgs, courier_id: i64) -> DeliveryPageKey {
        DeliveryPageKey {
            courier_id,
            args: args.clone(),
        }
    }

    fn args(args: &PageArgs) -> &PageArgs {
        args
    }

    /// Each courier's rows of the page `args` asks for, in page direction.
    async fn read(
        &self,
        args: &PageArgs,
        couriers: &[i64],
    ) -> AppResult<HashMap<i64, Vec<Arc<delivery::Model>>>> {
        // The list is rank ascending, then id descending; backwards walks it from its end.
        let forward = args.direction == Direction::Forward;
        let (rank_order, id_order, rank_beyond, id_beyond) = if forward {
            ("ASC", "DESC", ">", "<")
        } else {
            ("DESC", "ASC", "<", ">")
        };
        let backend = self.0.get_database_backend();
        let mut params = Params::new(backend);
        let couriers_param = params.push_ids(couriers);
        let after = match &args.cursor {
            Some(cursor) => {
                let position: DeliveryCursor = decode_cursor(cursor)?;
                let (rank, same_rank, id) = (
                    params.push(i32::from(position.rank)),
                    params.push(i32::from(position.rank)),
                    params.push(position.id),
                );
                format!(
                    " AND ({DELIVERY_RANK} {rank_beyond} {rank} \
                     OR ({DELIVERY_RANK} = {same_rank} AND id {id_beyond} {id}))"
                )
            }
            None => String::new(),
        };
        let limit = params.push(args.limit + 1);
        let columns = delivery::Column::iter()
            .map(|column| format!("d.{}", column.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let order = format!("ORDER BY {DELIVERY_RANK} {rank_order}, id {id_order}");
        let sql = if backend == DbBackend::Postgres {
            format!(
                "SELECT {columns} FROM unnest(CAST({couriers_param} AS bigint[])) AS p(id) \
                 CROSS JOIN LATERAL (SELECT * FROM deliveries WHERE courier_id = p.id{after} \
                 {order} LIMIT {limit}) AS d"
            )
        } else {
            format!(
                "SELECT {columns} FROM json_each({couriers_param}) AS p JOIN deliveries AS d \
                 ON d.id IN (SELECT id FROM deliveries WHERE courier_id = p.value{after} \
                 {order} LIMIT {limit})"
            )
        };
        let rows = self
            .0
            .query_all_raw(Statement::from_sql_and_values(backend, sql, params.values))
            .await?;
        let mut grouped: HashMap<i64, Vec<Arc<delivery::Model>>> = HashMap::new();
        for delivery in delivery::Model::from_rows(&rows)? {
            grouped
                .entry(delivery.courier_id)
                .or_default()
                .push(Arc::new(delivery));
        }
        // Each courier's rows in page direction (the statement's outer order is not kept).
        for rows in grouped.values_mut() {
            rows.sort_by(|a, b| {
                let (a, b) = (DeliveryCursor::from(&**a), DeliveryCursor::from(&**b));
                let listed = a.rank.cmp(&b.rank).then(b.id.cmp(&a.id));
                if forward { listed } else { listed.reverse() }
            });
        }
        Ok(grouped)
    }
}
