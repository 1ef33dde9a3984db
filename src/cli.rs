//! The command line: `serve`, `migrate`, `seed`, `schema`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use chrono::Utc;
use entities::user;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::{
    app::Application,
    auth::{Scope, kept_key, tokens::AccessTokens},
    config::{DatabaseUrl, Environment, LogFormat, Settings},
    db, graphql, seed, telemetry,
};

/// dishpatch: the GraphQL backend of a food ordering and delivery marketplace.
#[derive(Debug, Parser)]
#[command(name = "dishpatch", version, about)]
struct Cli {
    /// Settings file (TOML); `./dishpatch.toml` is read when present.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log output: `pretty` for a terminal, `json` for collectors.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    /// Database: `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// `production` hides GraphiQL, introspection and field suggestions.
    #[arg(long = "env", global = true, value_enum, value_name = "ENV")]
    environment: Option<Environment>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (SQLite file ./dishpatch.db unless configured otherwise).
    Serve(ServeArgs),
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Fill an empty database with the deterministic demo data set.
    Seed {
        /// Seed the demo data set (the only data set there is).
        #[arg(long, required = true)]
        demo: bool,
        /// Multiply the data set, e.g. 100 for benchmarks.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        scale: u32,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Print an access token for a user, signed with the configured keys.
    Token {
        /// Email of the user.
        #[arg(long, value_name = "EMAIL")]
        user: String,
        /// Narrow the token to these scopes, e.g. `orders:read,orders:write`; without them it
        /// carries all of the user's rights.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Lifetime, e.g. `15m`, `12h`, `7d`.
        #[arg(long, default_value = "1h")]
        ttl: humantime::Duration,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on, `host:port`.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Seed the demo data when the database is empty.
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Roll back the latest applied migration.
    Down,
    /// List applied and pending migrations.
    Status,
}

/// Parses the command line, runs the command, and turns errors into an exit code.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    match run_command(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Once, on stderr, for the person who ran the command (not also as a log line).
            eprintln!("error: {}", error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

async fn run_command(cli: Cli) -> anyhow::Result<()> {
    if let Command::Schema = cli.command {
        print!("{}", graphql::sdl());
        return Ok(());
    }
    let mut settings = Settings::load(cli.config.as_deref()).context("reading the settings")?;
    if let Some(format) = cli.log_format {
        settings.log_format = format;
    }
    if let Some(url) = cli.database_url {
        settings.database_url = DatabaseUrl(url);
    }
    if let Some(environment) = cli.environment {
        settings.environment = environment;
    }
    telemetry::init(settings.log_format, &settings.log_filter);
    match cli.command {
        Command::Schema => unreachable!("handled above"),
        Command::Serve(args) => {
            if let Some(listen) = args.listen {
                settings.listen = listen;
            }
            settings.demo |= args.demo;
            let app = Application::build(settings.clone()).await?;
            if settings.demo {
                print_demo_headers(&app).await?;
            }
            tracing::info!(
                address = %format!("http://{}", display_address(&settings.listen, app.port())),
                database = settings.database_url.scheme(),
                "dishpatch is serving GraphQL and GraphiQL at /graphql"
            );
            app.run_until_stopped().await?;
        }
        Command::Migrate { action } => {
            let db = db::open(&settings.database_url, 1).await?;
            match action {
                MigrateAction::Up => db::migrate(&db).await?,
                MigrateAction::Down => Migrator::down(&db, Some(1)).await?,
                MigrateAction::Status => {
                    for migration in Migrator::get_applied_migrations(&db).await? {
                        println!("applied  {}", migration.name());
                    }
                    for migration in Migrator::get_pending_migrations(&db).await? {
                        println!("pending  {}", migration.name());
                    }
                }
            }
        }
        Command::Token { user, scopes, ttl } => {
            // The same keys the server uses: configured ones, or the SQLite database's kept key.
            settings.auth.signing_keys =
                kept_key::signing_keys(&settings.auth.signing_keys, &settings.database_url)?;
            anyhow::ensure!(
                !settings.auth.signing_keys.is_empty(),
                "configure auth.signing_keys (e.g. DISHPATCH_AUTH__SIGNING_KEYS='[{{\"kid\":\"k1\",\"secret\":\"…\"}}]'), \
                 the keys the servers use, so that they accept the token"
            );
            let scopes = scopes
                .iter()
                .map(|s| {
                    Scope::parse(s).map(|_| s.clone()).ok_or_else(|| {
                        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                        anyhow::anyhow!("unknown scope `{s}`; known: {}", known.join(", "))
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let db = db::open(&settings.database_url, 1).await?;
            let account = user::Entity::find()
                .filter(user::Column::Email.eq(crate::services::users::normalize_email(&user)))
                .one(&db)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user with email {user}"))?;
            let tokens = AccessTokens::from_settings(&settings.auth)?;
            let ttl = chrono::Duration::from_std(*ttl).context("the ttl is too long")?;
            println!(
                "{}",
                tokens.issue(
                    account.id,
                    (!scopes.is_empty()).then_some(&scopes[..]),
                    Some(ttl),
                    Utc::now()
                )
            );
        }
        Command::Seed { demo: _, scale } => {
            let db = db::open(&settings.database_url, 2).await?;
            db::migrate(&db).await?;
            anyhow::ensure!(
                seed::is_empty(&db).await?,
                "the database already has restaurants; seed fills only an empty database"
            );
            let started = std::time::Instant::now();
            let counts = seed::seed_demo(&db, scale).await?;
            let media =
                crate::media::Media::from_settings(&settings.media, &settings.database_url)?;
            let photos = seed::demo_photos(&db, &media).await?;
            println!(
                "seeded in {:.1?}: {counts}, {photos} photos",
                started.elapsed()
            );
        }
    }
    Ok(())
}

/// Prints `Authorization` headers for the demo accounts, ready to paste into GraphiQL, on
/// stderr so that stdout stays pure JSON logs with `--log-format json`.
async fn print_demo_headers(app: &Application) -> anyhow::Result<()> {
    let accounts = [
        ("customer", seed::DEMO_CUSTOMER),
        ("restaurant owner", seed::DEMO_OWNER),
        ("courier", seed::DEMO_COURIER),
        ("admin", seed::DEMO_ADMIN),
    ];
    eprintln!("\nDemo accounts (paste one into GraphiQL's Headers tab; valid for 24 hours):");
    for (role, email) in accounts {
        let Some(account) = user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(app.db())
            .await?
        else {
            continue;
        };
        let token = app.tokens().issue(
            account.id,
            None,
            Some(chrono::Duration::hours(24)),
            Utc::now(),
        );
        eprintln!("  {role:<17} {{\"Authorization\": \"Bearer {token}\"}}");
    }
    eprintln!();
    Ok(())
}

fn display_address(listen: &str, port: u16) -> String {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    format!("{host}:{port}")
}

/// An error and its causes, `: `-separated, leaving out a cause that only repeats what the
/// text before it already says (libraries often wrap an error and print it again).
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        let cause = cause.trim_end_matches('.');
        if text.contains(cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[test]
    fn an_error_chain_leaves_out_causes_it_already_says() {
        let error = anyhow::anyhow!("The connection string 'foo' cannot be parsed.")
            .context("The connection string 'foo' cannot be parsed.")
            .context("opening the database");
        assert_eq!(
            error_chain(&error),
            "opening the database: The connection string 'foo' cannot be parsed"
        );
    }
}
