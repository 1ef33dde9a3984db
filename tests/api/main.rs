//! The one integration test binary: every test starts the real `Application` on port 0 with a
//! database of its own (SQLite always; PostgreSQL too when `TEST_POSTGRES_URL` is set).

mod helpers;

mod addresses;
mod arrival;
mod auth;
mod browse;
mod checkout;
mod cli;
mod documents;
mod errors;
mod field_errors;
mod first_hour;
mod fuzz;
mod graphiql;
mod hardening;
mod hostile_input;
mod http;
mod listing;
mod live;
mod live_access;
mod menu_import;
mod menu_options;
mod menus;
mod metrics;
mod nodes;
mod oauth;
mod orders;
mod outage;
mod people;
mod photos;
mod races;
mod rows;
mod schema;
mod settings;
mod statements;
mod time_zones;
mod webhooks;
mod websocket;
mod ws_protocol;
