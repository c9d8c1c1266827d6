//! `airlog migrate` and `airlog db ...`: the schema and the private cluster by hand.

use anyhow::bail;

use super::DbCommand;
use crate::config::Settings;
use crate::db::cluster::{Cluster, ClusterState};

/// Applies pending migrations and lists them.
pub(super) fn migrate(settings: &Settings) -> anyhow::Result<()> {
    super::with_database(settings, |url| {
        let applied = crate::db::migrate(url)?;
        if applied.is_empty() {
            println!("database is up to date");
        }
        for name in applied {
            println!("applied {name}");
        }
        Ok(())
    })
}

/// Runs a `db` command.
pub(super) fn run(settings: &Settings, cmd: DbCommand) -> anyhow::Result<()> {
    if let Some(url) = settings.database_url() {
        if let DbCommand::Url = cmd {
            println!("{url}");
            return Ok(());
        }
        bail!("a database URL is configured (DATABASE_URL or database.url), so there is no private cluster to manage");
    }
    let cluster = Cluster::new(settings.cluster_dir())?;
    match cmd {
        DbCommand::Start => {
            settings.prepare_data_dir()?;
            cluster.start()?;
            println!("running; connect with: psql \"{}\"", cluster.url());
        }
        DbCommand::Stop => {
            cluster.stop()?;
            println!("stopped");
        }
        DbCommand::Status => match cluster.status() {
            ClusterState::Absent => println!(
                "no cluster yet in {} (airlog serve or airlog db start creates it)",
                cluster.root().display()
            ),
            ClusterState::Stopped => println!("stopped ({})", cluster.root().display()),
            ClusterState::Stale { pid } => println!(
                "stopped, with a stale postmaster.pid (pid {pid}) that the next start removes"
            ),
            ClusterState::Running { pid } => println!("running (pid {pid}); {}", cluster.url()),
        },
        DbCommand::Url => println!("{}", cluster.url()),
    }
    Ok(())
}
