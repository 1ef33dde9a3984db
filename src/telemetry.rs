//! Logging and spans: readable on a terminal, JSON for collectors.

use std::io::IsTerminal;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let registry = tracing_subscriber::registry().with(filter);
    // A second init (tests build many apps in one process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Pretty => registry
            .with(fmt::layer().with_target(false).with_ansi(colour()))
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init(),
    };
}

/// Colour only for a person at a terminal, and never when `NO_COLOR` is set (no-color.org):
/// escape codes in a file or a log collector are noise.
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// For tests: silent unless `TEST_LOG` is set, so failures are readable.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init(LogFormat::Pretty, "info,sqlx=warn,sea_orm=warn");
    }
}
