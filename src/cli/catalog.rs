//! `airlog catalog scan`: audio files become sounds.

use diesel::PgConnection;

use super::CatalogCommand;

/// Runs a `catalog` command.
pub(super) fn run(conn: &mut PgConnection, cmd: CatalogCommand) -> anyhow::Result<()> {
    match cmd {
        CatalogCommand::Scan {
            dir,
            sound_type,
            program,
        } => {
            let bar = super::progress_bar(0, "{bar:40} {pos}/{len} files {msg}");
            let done = crate::catalog::scan(conn, &dir, &sound_type, &program, &bar)?;
            for (file, why) in &done.skipped {
                eprintln!("skipped {}: {why}", file.display());
            }
            println!(
                "{} sounds registered from {}, {} files skipped",
                done.registered,
                dir.display(),
                done.skipped.len()
            );
            Ok(())
        }
    }
}
