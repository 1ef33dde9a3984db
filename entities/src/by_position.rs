//! Models read from rows by the position of their columns rather than by their names.
//!
//! SeaORM's derived `FromQueryResult` looks every value up by column name (a hashed lookup per
//! column per row) and has sqlx check each value's type against the column's. The rows of
//! `Entity::find()`, and of statements that select `Column::iter()` first, hold the entity's
//! columns in declaration order, so they can be read by index; and every row of a PostgreSQL
//! statement has the same column types, so checking them on the first row is enough. In the
//! benchmark's nested query (some 4,000 rows) the two were a tenth of the server's work.

use sea_orm::{DbErr, QueryResult, TryGetable};
use sqlx::{Column as _, Decode, Postgres, Row, Sqlite, Type};

/// A value that can be read from a column of a row.
pub trait ReadColumn: Sized {
    /// Reads column `index` of `row`. With `check` set (a statement's first row), the
    /// column's type is checked against this value's; without, PostgreSQL's is trusted, since
    /// every row of a statement has the same column types. SQLite checks every value: its
    /// columns are typed per value, not per column.
    fn read(row: &QueryResult, index: usize, check: bool) -> Result<Self, DbErr>;
}

impl<T> ReadColumn for T
where
    T: TryGetable + for<'r> Decode<'r, Postgres> + Type<Postgres>,
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite>,
{
    fn read(row: &QueryResult, index: usize, check: bool) -> Result<Self, DbErr> {
        let read = if let Some(row) = row.try_as_pg_row() {
            if check {
                // The column's declared type rather than the value's, which a NULL has not.
                let column = row.try_column(index).map_err(|error| type_error(&error))?;
                if !<T as Type<Postgres>>::compatible(column.type_info()) {
                    return Err(DbErr::Type(format!(
                        "column {index} ({}) is {}, which {} is not read from",
                        column.name(),
                        column.type_info(),
                        std::any::type_name::<T>(),
                    )));
                }
                row.try_get(index)
            } else {
                row.try_get_unchecked(index)
            }
        } else if let Some(row) = row.try_as_sqlite_row() {
            row.try_get(index)
        } else {
            return row.try_get_by_index(index);
        };
        read.map_err(|error| type_error(&error))
    }
}

fn type_error(error: &sqlx::Error) -> DbErr {
    DbErr::Type(error.to_string())
}

/// A model read by the position of its columns.
pub trait FromRowByPosition: Sized {
    /// The fields in the order they are read; a test checks it is `Column::iter()`'s order.
    const COLUMNS: &'static [&'static str];

    /// Reads the model from the first `COLUMNS.len()` columns of `row`; `check` is set on a
    /// statement's first row (see [`ReadColumn::read`]).
    fn read(row: &QueryResult, check: bool) -> Result<Self, DbErr>;

    /// Reads the model from one row, types checked.
    fn from_row(row: &QueryResult) -> Result<Self, DbErr> {
        Self::read(row, true)
    }

    /// Reads every row of one statement, the first with `check` set.
    fn from_rows(rows: &[QueryResult]) -> Result<Vec<Self>, DbErr> {
        read_rows(rows, Self::read)
    }
}

/// Reads every row of one statement with `read`, with `check` set on the first row only (see
/// [`ReadColumn::read`]).
pub fn read_rows<T>(
    rows: &[QueryResult],
    read: impl Fn(&QueryResult, bool) -> Result<T, DbErr>,
) -> Result<Vec<T>, DbErr> {
    rows.iter()
        .enumerate()
        .map(|(index, row)| read(row, index == 0))
        .collect()
}

/// Implements [`FromRowByPosition`] for the `Model` of the module it is used in, given every
/// field in column order (the struct literal does not compile when one is missing; a test
/// checks the order).
macro_rules! by_position {
    ($($field:ident),+ $(,)?) => {
        impl $crate::FromRowByPosition for Model {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),+];

            fn read(row: &sea_orm::QueryResult, check: bool) -> Result<Self, sea_orm::DbErr> {
                let mut index = 0usize..;
                Ok(Self {
                    $($field: $crate::ReadColumn::read(row, index.next().unwrap_or_default(), check)?,)+
                })
            }
        }

        #[cfg(test)]
        #[test]
        fn columns_are_read_in_declaration_order() {
            use sea_orm::{IdenStatic, Iterable};
            let declared: Vec<&str> = Column::iter().map(|column| column.as_str()).collect();
            assert_eq!(<Model as $crate::FromRowByPosition>::COLUMNS, declared.as_slice());
        }
    };
}
pub(crate) use by_position;

/// Stored as text; read through SeaORM, which maps the text to the variant.
impl ReadColumn for crate::OrderStatus {
    fn read(row: &QueryResult, index: usize, _check: bool) -> Result<Self, DbErr> {
        row.try_get_by_index(index)
    }
}

/// Stored as text, like the order status.
impl ReadColumn for crate::DeliveryStatus {
    fn read(row: &QueryResult, index: usize, _check: bool) -> Result<Self, DbErr> {
        row.try_get_by_index(index)
    }
}
