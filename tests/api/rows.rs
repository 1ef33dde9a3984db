//! Rows read by column position (`entities::FromRowByPosition`) against SeaORM's own
//! decoding by name, on both databases.

use std::fmt::Debug;

use entities::{
    FromRowByPosition, api_token, delivery, menu_category, menu_item, order, read_rows, restaurant,
    review, user,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, Iterable, PrimaryKeyToColumn,
    QueryOrder, QueryTrait, Statement,
};

use crate::helpers::db_test;

/// Every row of `E`, read by position and by SeaORM, in primary-key order.
async fn both_ways<E>(db: &DatabaseConnection) -> (Vec<E::Model>, Vec<E::Model>)
where
    E: EntityTrait,
    E::Model: FromRowByPosition,
{
    let id = E::PrimaryKey::iter()
        .next()
        .expect("a primary key")
        .into_column();
    let by_name = E::find()
        .order_by_asc(id)
        .all(db)
        .await
        .expect("read by name");
    let statement = E::find().order_by_asc(id).build(db.get_database_backend());
    let rows = db.query_all_raw(statement).await.expect("read rows");
    let by_position = E::Model::from_rows(&rows).expect("read by position");
    (by_position, by_name)
}

async fn assert_same<E>(db: &DatabaseConnection, at_least: usize)
where
    E: EntityTrait,
    E::Model: FromRowByPosition + PartialEq + Debug,
{
    let (by_position, by_name) = both_ways::<E>(db).await;
    assert!(
        by_name.len() >= at_least,
        "{}: the demo data has at least {at_least} rows",
        E::default().table_name()
    );
    assert_eq!(by_position, by_name, "{}", E::default().table_name());
}

db_test! {
    /// Each entity read by position is exactly what SeaORM reads by name: same columns, same
    /// order, same values (NULLs, JSON, timestamps and the order status included).
    async fn models_read_by_position_equal_models_read_by_name(app) {
        let db = &app.db;
        assert_same::<restaurant::Entity>(db, 1).await;
        assert_same::<menu_category::Entity>(db, 1).await;
        assert_same::<menu_item::Entity>(db, 1).await;
        assert_same::<review::Entity>(db, 1).await;
        assert_same::<user::Entity>(db, 1).await;
        assert_same::<order::Entity>(db, 1).await;
        assert_same::<delivery::Entity>(db, 1).await;
        // The demo data has no API tokens; make one so the comparison has a row to read.
        let customer = app.user_id("customer@dishpatch.test").await;
        dishpatch::services::api_tokens::create(
            db,
            customer,
            "rows test",
            &[dishpatch::auth::Scope::OrdersRead],
            None,
            chrono::Utc::now(),
        )
        .await
        .expect("the statement runs")
        .expect("a valid token");
        assert_same::<api_token::Entity>(db, 1).await;
    }
}

db_test! {
    /// A column whose type is not the one a reader expects is an error on the first row, not
    /// bytes misread as another type on the rows after it (whose types are not checked again).
    async fn a_column_of_the_wrong_type_is_an_error(app) {
        let db = &app.db;
        // Text where the reader expects an integer: eight bytes, which an unchecked read would
        // take for an integer (PostgreSQL's binary int8) or for 0 (SQLite) without a word.
        let statement = Statement::from_string(
            db.get_database_backend(),
            "SELECT CAST('abcdefgh' AS TEXT) AS name, id FROM restaurants ORDER BY id",
        );
        let rows = db.query_all_raw(statement).await.expect("rows");
        assert!(rows.len() > 1);
        let read: Result<Vec<i64>, DbErr> = read_rows(&rows, |row, check| {
            <i64 as entities::ReadColumn>::read(row, 0, check)
        });
        let error = read.expect_err("text is not read as an integer");
        assert!(matches!(error, DbErr::Type(_)), "{error:?}");
    }
}

db_test! {
    /// A column that is NULL in the first row is checked all the same: PostgreSQL by the
    /// column's declared type, SQLite value by value.
    async fn a_column_null_in_the_first_row_is_still_checked(app) {
        let db = &app.db;
        let statement = Statement::from_string(
            db.get_database_backend(),
            "SELECT CASE WHEN id = (SELECT MIN(id) FROM restaurants) THEN NULL \
             ELSE CAST('abcdefgh' AS TEXT) END AS name, id FROM restaurants ORDER BY id",
        );
        let rows = db.query_all_raw(statement).await.expect("rows");
        assert!(rows.len() > 1);
        let read: Result<Vec<Option<i64>>, DbErr> = read_rows(&rows, |row, check| {
            <Option<i64> as entities::ReadColumn>::read(row, 0, check)
        });
        let error = read.expect_err("text is not read as an integer");
        assert!(matches!(error, DbErr::Type(_)), "{error:?}");
    }
}
