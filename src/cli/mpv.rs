//! `airlog mpv parse` and `airlog mpv import`: mpv-history-daemon files.

use std::path::PathBuf;

use diesel::PgConnection;

/// Prints the plays of the files as `mpv-history-daemon parse` prints them.
pub(super) fn parse(files: &[PathBuf], all_events: bool) -> anyhow::Result<()> {
    let plays = crate::monitor::mpv::history::parse_files(files, all_events, &Default::default())?;
    println!("{}", serde_json::to_string(&plays)?);
    Ok(())
}

/// Stores the plays of the files (importing twice adds nothing).
pub(super) fn import(conn: &mut PgConnection, files: &[PathBuf]) -> anyhow::Result<()> {
    let bar = super::progress_bar(0, "{bar:40} {pos}/{len} files");
    let (found, new) =
        crate::monitor::mpv::history::import_files(conn, files, &Default::default(), &bar)?;
    println!("{found} plays in {} files, {new} new", files.len());
    Ok(())
}
