//! `airlog catalog scan DIR`: registers audio files as sounds, with the duration and tags read
//! from the files, so operators need not type them in.

use std::path::{Path, PathBuf};

use anyhow::Context;
use diesel::PgConnection;
use lofty::prelude::{Accessor, AudioFile, ItemKey, TaggedFileExt};

use crate::db::playout::{self, NewSound, NewTrack};

/// File endings taken for audio.
const AUDIO: &[&str] = &[
    "ogg", "oga", "opus", "mp3", "flac", "wav", "m4a", "aac", "aiff", "aif",
];

/// What a scan did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scanned {
    pub registered: usize,
    pub skipped: Vec<(PathBuf, String)>,
}

/// Audio files under `dir`, sorted, following no links out of it.
pub fn audio_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?
        {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && path
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| AUDIO.contains(&e.to_ascii_lowercase().as_str()))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads one file's duration and tags into a sound (path made absolute).
pub fn read_sound(path: &Path, r#type: &str, program: &str) -> anyhow::Result<NewSound> {
    let path = std::fs::canonicalize(path)
        .with_context(|| format!("cannot resolve {}", path.display()))?;
    let file =
        lofty::read_from_path(&path).map_err(|e| anyhow::anyhow!("cannot read audio: {e}"))?;
    let duration = file.properties().duration().as_secs_f64();
    let tag = file.primary_tag().or_else(|| file.first_tag());
    let text = |f: fn(&lofty::tag::Tag) -> Option<std::borrow::Cow<'_, str>>| {
        tag.and_then(f).map(|s| s.into_owned()).unwrap_or_default()
    };
    let mut title = text(|t| t.title());
    if title.is_empty() {
        title = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
    }
    let tag_text = |key: &ItemKey| {
        tag.and_then(|t| t.get_string(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    // ID3 TPUB and Vorbis ORGANIZATION/PUBLISHER name the label where no LABEL tag is set.
    let mut label = tag_text(&ItemKey::Label);
    if label.is_empty() {
        label = tag_text(&ItemKey::Publisher);
    }
    let mut composer = tag_text(&ItemKey::Composer);
    if composer.is_empty() {
        composer = tag_text(&ItemKey::Lyricist);
    }
    // A malformed ISRC tag is left out rather than refusing the file.
    let isrc = crate::domain::recording::isrc(&tag_text(&ItemKey::Isrc)).unwrap_or_default();
    Ok(NewSound {
        path: path.display().to_string(),
        duration_s: (duration > 0.0).then_some(duration),
        title,
        artist: text(|t| t.artist()),
        album: text(|t| t.album()),
        label,
        isrc,
        composer,
        r#type: r#type.to_string(),
        program: program.to_string(),
        tracks: Vec::new(),
    })
}

/// Registers every audio file under `dir`; files that cannot be read are reported, not fatal.
/// Tracks already entered for a sound are kept.
pub fn scan(
    conn: &mut PgConnection,
    dir: &Path,
    r#type: &str,
    program: &str,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Scanned> {
    let files = audio_files(dir)?;
    progress.set_length(files.len() as u64);
    let mut done = Scanned::default();
    for file in files {
        progress.set_message(
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        match read_sound(&file, r#type, program) {
            Ok(mut sound) => {
                if let Some(existing) = playout::sound_by_path(conn, &sound.path)? {
                    sound.tracks = existing
                        .tracks
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| {
                            let text = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                            Some(NewTrack {
                                timestamp_s: t["timestamp"].as_f64()?,
                                artist: text("artist"),
                                title: text("title"),
                                album: text("album"),
                                label: text("label"),
                                isrc: text("isrc"),
                                composer: text("composer"),
                                duration_s: t["duration"].as_f64(),
                            })
                        })
                        .collect();
                }
                playout::upsert_sound(conn, &sound)?;
                done.registered += 1;
            }
            Err(e) => done.skipped.push((file, format!("{e:#}"))),
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(done)
}
