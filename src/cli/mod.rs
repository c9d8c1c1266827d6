//! The command line: `airlog serve`, `migrate`, `token ...`, `db ...`, `jobs ...`,
//! `catalog ...`, `ship`, `import-log`, `mpv ...`, `report ...`, `openapi`. The arguments are in `args`;
//! each command (or group) has a module of its own; what several share is here: opening the
//! database for a one-off command, a progress bar, an async runtime that stops on signals.

mod args;
mod catalog;
mod db;
mod jobs;
mod mpv;
mod report;
mod serve;
mod ship;
mod token;

use std::future::Future;

use anyhow::Context;
use diesel::{Connection, PgConnection};

pub use args::*;

use crate::config::Settings;
use crate::db::Database;
use crate::shutdown::Shutdown;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut settings = Settings::load(cli.config.as_deref(), env)?;
    if let Some(dir) = cli.data_dir {
        settings.data_dir = dir;
    }
    crate::telemetry::init(&settings.log);
    match cli.command {
        Command::Serve(args) => {
            if let Some(bind) = args.bind {
                settings.server.bind = bind;
            }
            serve::serve(settings)
        }
        Command::Migrate => db::migrate(&settings),
        Command::Token(cmd) => with_connection(&settings, |conn| token::run(conn, cmd)),
        Command::Db(cmd) => db::run(&settings, cmd),
        Command::Jobs(cmd) => with_connection(&settings, |conn| jobs::run(conn, &settings, cmd)),
        Command::Catalog(cmd) => with_connection(&settings, |conn| catalog::run(conn, cmd)),
        Command::Ship(args) => ship::ship(args),
        Command::ImportLog(args) => ship::import(args),
        Command::Mpv(MpvCommand::Import { files }) => {
            with_connection(&settings, |conn| mpv::import(conn, &files))
        }
        Command::Mpv(MpvCommand::Parse { all_events, files }) => mpv::parse(&files, all_events),
        Command::Report(cmd) => {
            with_connection(&settings, |conn| report::run(conn, &settings, cmd))
        }
        Command::Openapi => {
            println!("{}", crate::api::openapi::document_json());
            Ok(())
        }
    }
}

/// Opens the database for a one-off command and closes what it opened (a private cluster
/// this command started), also when `f` failed.
fn with_database(
    settings: &Settings,
    f: impl FnOnce(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let database = Database::open(settings)?;
    let result = f(&database.url);
    let stopped = database.shutdown();
    result.and(stopped)
}

/// Like `with_database`, with the migrations applied and one connection for `f`.
fn with_connection(
    settings: &Settings,
    f: impl FnOnce(&mut PgConnection) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    with_database(settings, |url| {
        crate::db::migrate(url)?;
        let mut conn = PgConnection::establish(url).context("cannot connect to the database")?;
        f(&mut conn)
    })
}

/// A progress bar on stderr drawn with this indicatif template.
fn progress_bar(len: u64, template: &str) -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(len)
        .with_style(indicatif::ProgressStyle::with_template(template).expect("valid template"))
}

/// Runs `work` on a new async runtime with a shutdown token that SIGINT and SIGTERM fire.
fn run_until_signalled<T, F>(work: impl FnOnce(Shutdown) -> F) -> anyhow::Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (trigger, shutdown) = crate::shutdown::channel();
        tokio::spawn(crate::shutdown::on_signals(trigger));
        work(shutdown).await
    })
}
