//! Programme playlists: `<playlist_dir>/<programme>.m3u` with each programme's archive sounds,
//! for the station's Liquidsoap to play. A worker of its own beside the station's monitor (and
//! under the same station lock), so a playlist directory that cannot be written never holds up
//! the as-run log, and a Liquidsoap that is down never holds up the playlists.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::db::playout;
use crate::db::DbPool;
use crate::worker::{Backoff, Next, OnError, Worker};

use super::liquidsoap::monitor::StationConfig;

/// How often the playlists are compared with the catalogue (and rewritten when changed).
const PERIOD: Duration = Duration::from_secs(300);
/// A failed write is tried again soon, then at most every minute.
const RETRY: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

/// Writes one station's programme playlists.
pub struct PlaylistWriter {
    station: String,
    dir: PathBuf,
    pool: DbPool,
    /// What each file was last seen to hold.
    written: HashMap<PathBuf, String>,
}

impl PlaylistWriter {
    /// The writer of a station's playlists; `None` when it has no `playlist_dir`.
    pub fn new(station: &StationConfig, pool: DbPool) -> Option<PlaylistWriter> {
        Some(PlaylistWriter {
            station: station.name.clone(),
            dir: station.playlist_dir.clone()?,
            pool,
            written: HashMap::new(),
        })
    }

    /// Writes `<playlist_dir>/<programme>.m3u` for each programme whose list changed,
    /// atomically; returns how many files were written.
    pub async fn sync(&mut self) -> anyhow::Result<usize> {
        let lists = crate::db::run(&self.pool, playout::programme_playlists).await?;
        let mut written = 0;
        for (program, paths) in lists {
            let name: String = program
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let file = self.dir.join(format!("{name}.m3u"));
            let content = format!("#EXTM3U\n{}\n", paths.join("\n"));
            if self.written.get(&file) == Some(&content)
                || std::fs::read_to_string(&file).ok().as_ref() == Some(&content)
            {
                self.written.insert(file, content);
                continue;
            }
            write_atomically(&file, &content)?;
            tracing::info!(station = self.station.as_str(), file = %file.display(), sounds = paths.len(), "playlist written");
            self.written.insert(file, content);
            written += 1;
        }
        Ok(written)
    }
}

impl Worker for PlaylistWriter {
    fn name(&self) -> &str {
        "playlist writer"
    }

    fn span(&self) -> tracing::Span {
        crate::worker::station_span(self.name(), self.station.as_str())
    }

    fn period(&self) -> Option<Duration> {
        Some(PERIOD)
    }

    fn on_error(&self) -> OnError {
        OnError::Retry(RETRY)
    }

    async fn step(&mut self) -> anyhow::Result<Next> {
        self.sync().await?;
        Ok(Next::Wait)
    }
}

fn write_atomically(file: &Path, content: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let tmp = file.with_extension("m3u.tmp");
    std::fs::write(&tmp, content).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot replace {}", file.display()))?;
    Ok(())
}
