//! Following a log file like `tail -F`: whole lines only, with the byte offset after each, and
//! rotation by rename (the file at the path changes) or by copytruncate (it shrinks).
//!
//! Rotation as logrotate and nginx do it: the log is renamed (and maybe a new one created), then
//! nginx is told to reopen its logs; until every worker has, lines still go to the renamed file
//! (about a second, longer under load). So a renamed file is kept open and read, alongside the
//! new one, until nothing was added to it for a grace period.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Which file an offset belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// A line read (raw bytes, without its newline), and the offset just after it in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub raw: Vec<u8>,
    pub file: FileId,
    pub end: u64,
}

/// Where a follower is: the file at the log's path, and the rotated files still being read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    pub current: Option<(FileId, u64)>,
    pub draining: Vec<(FileId, u64)>,
}

/// One open file and how far it has been read.
struct Reader {
    file: File,
    id: FileId,
    /// Bytes read so far, the partial line included.
    offset: u64,
    partial: Vec<u8>,
    /// When data last came (a rotated file is let go once this is older than the grace).
    last_data: Instant,
}

impl Reader {
    fn open(path: &Path, offset: u64) -> std::io::Result<Reader> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let offset = if offset > meta.len() { 0 } else { offset };
        file.seek(SeekFrom::Start(offset))?;
        Ok(Reader {
            file,
            id: FileId::of(&meta),
            offset,
            partial: Vec::new(),
            last_data: Instant::now(),
        })
    }

    /// The offset just after the last whole line.
    fn position(&self) -> (FileId, u64) {
        (self.id, self.offset - self.partial.len() as u64)
    }

    /// Adds whole lines to `lines` until it holds `max` (false) or the file's end (true).
    fn read(&mut self, max: usize, lines: &mut Vec<Line>) -> std::io::Result<bool> {
        let mut buf = [0u8; 64 * 1024];
        while lines.len() < max {
            let n = self.file.read(&mut buf)?;
            if n == 0 {
                return Ok(true);
            }
            self.last_data = Instant::now();
            let start_of_partial = self.offset - self.partial.len() as u64;
            self.offset += n as u64;
            self.partial.extend_from_slice(&buf[..n]);
            let mut consumed = 0;
            while let Some(nl) = self.partial[consumed..].iter().position(|b| *b == b'\n') {
                let end = consumed + nl + 1;
                lines.push(Line {
                    raw: self.partial[consumed..end - 1].to_vec(),
                    file: self.id,
                    end: start_of_partial + end as u64,
                });
                consumed = end;
            }
            self.partial.drain(..consumed);
        }
        Ok(false)
    }
}

/// The reader of one log path, across rotations.
pub struct Follower {
    path: PathBuf,
    grace: Duration,
    current: Option<Reader>,
    /// Renamed files still read, oldest first.
    draining: Vec<Reader>,
}

impl Follower {
    /// Starts where `at` says: each saved file wherever it is now (a rotated file is found again
    /// in the log's directory by its identity and read until idle for `grace`); the current file
    /// at its offset, or at 0 when the saved one was rotated away or is gone. Without a saved
    /// file, the file at the path is read from `at`'s offset.
    pub fn open(path: &Path, at: &Positions, grace: Duration) -> std::io::Result<Follower> {
        let mut f = Follower {
            path: path.to_path_buf(),
            grace,
            current: None,
            draining: Vec::new(),
        };
        for (id, offset) in &at.draining {
            match find_by_id(path, *id) {
                Some(rotated) => {
                    tracing::info!(file = %rotated.display(), "resuming a rotated log file");
                    f.draining.push(Reader::open(&rotated, *offset)?);
                }
                None => tracing::warn!(
                    log = %path.display(),
                    offset,
                    "a rotated log file of the saved position is gone (compressed or deleted); what was written to it past that offset is not read"
                ),
            }
        }
        let now = std::fs::metadata(path).ok().map(|m| FileId::of(&m));
        match at.current {
            Some((id, offset)) if Some(id) == now => f.current = Some(Reader::open(path, offset)?),
            Some((id, offset)) => {
                match find_by_id(path, id) {
                    Some(rotated) => {
                        tracing::info!(file = %rotated.display(), "resuming in the rotated log file");
                        f.draining.push(Reader::open(&rotated, offset)?);
                    }
                    None => tracing::warn!(
                        log = %path.display(),
                        "the file of the saved position is gone; starting the current file from its beginning"
                    ),
                }
                if now.is_some() {
                    f.current = Some(Reader::open(path, 0)?);
                }
            }
            None if now.is_some() => f.current = Some(Reader::open(path, 0)?),
            None => {}
        }
        Ok(f)
    }

    /// The offsets just after the last whole line returned, per file.
    pub fn positions(&self) -> Positions {
        Positions {
            current: self.current.as_ref().map(Reader::position),
            draining: self.draining.iter().map(Reader::position).collect(),
        }
    }

    /// Up to `max` whole lines, rotated files first (what nginx still wrote there is older than
    /// what it writes to the new file); empty when there is nothing new. Rotation is handled here.
    pub fn read_lines(&mut self, max: usize) -> std::io::Result<Vec<Line>> {
        let mut lines = Vec::new();
        let mut i = 0;
        while i < self.draining.len() {
            let at_end = self.draining[i].read(max, &mut lines)?;
            if !at_end {
                return Ok(lines);
            }
            let r = &self.draining[i];
            if r.last_data.elapsed() >= self.grace {
                if !r.partial.is_empty() {
                    tracing::warn!(
                        bytes = r.partial.len(),
                        "a rotated log file ended without a newline; that part is skipped"
                    );
                }
                tracing::info!(log = %self.path.display(), "a rotated log file stayed idle for the grace period; it is let go");
                self.draining.remove(i);
            } else {
                i += 1;
            }
        }
        loop {
            if self.current.is_none() {
                if std::fs::metadata(&self.path).is_err() {
                    return Ok(lines);
                }
                self.current = Some(Reader::open(&self.path, 0)?);
            }
            let current = self.current.as_mut().expect("attached");
            if !current.read(max, &mut lines)? {
                return Ok(lines);
            }
            // At the end: has the log been rotated?
            match std::fs::metadata(&self.path) {
                Ok(meta) if FileId::of(&meta) != current.id => {
                    tracing::info!(
                        log = %self.path.display(),
                        grace_s = self.grace.as_secs_f64(),
                        "log rotated (renamed); reading the renamed file until it is idle, and the new one"
                    );
                    let mut old = self.current.take().expect("just read");
                    // The writer may still be busy with it: the grace counts from now.
                    old.last_data = Instant::now();
                    self.draining.push(old);
                    self.current = Some(Reader::open(&self.path, 0)?);
                }
                Ok(meta) if meta.len() < current.offset => {
                    tracing::info!(log = %self.path.display(), "log truncated (copytruncate); reading from its beginning");
                    self.current = Some(Reader::open(&self.path, 0)?);
                }
                _ => return Ok(lines),
            }
        }
    }
}

/// A file in the log's directory with this identity (a rotated log).
fn find_by_id(path: &Path, id: FileId) -> Option<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && FileId::of(&m) == id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(f: &mut Follower) -> Vec<String> {
        (0..3)
            .flat_map(|_| f.read_lines(100).unwrap())
            .map(|l| String::from_utf8(l.raw).unwrap())
            .collect()
    }

    #[test]
    fn whole_lines_only_and_rotation_by_rename_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let grace = Duration::from_secs(600);
        let mut w = std::fs::File::create(&path).unwrap();
        write!(w, "one\ntw").unwrap();
        let mut f = Follower::open(&path, &Positions::default(), grace).unwrap();
        let lines = f.read_lines(100).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].raw, b"one");
        assert_eq!(lines[0].end, 4);
        assert_eq!(
            f.positions().current.unwrap().1,
            4,
            "a partial line is not consumed"
        );
        writeln!(w, "o").unwrap();
        assert_eq!(read_all(&mut f), ["two"]);

        // Rename rotation: the new file is followed, and the writer that has not reopened yet
        // still adds to the renamed one, which is still read.
        writeln!(w, "three").unwrap();
        std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
        let mut w2 = std::fs::File::create(&path).unwrap();
        writeln!(w2, "four").unwrap();
        assert_eq!(read_all(&mut f), ["three", "four"]);
        writeln!(w, "late").unwrap();
        writeln!(w2, "five").unwrap();
        assert_eq!(read_all(&mut f), ["late", "five"]);
        let at = f.positions();
        assert_eq!(at.draining.len(), 1);

        // Saved positions in the rotated and the new file are found again by identity.
        writeln!(w, "later").unwrap();
        writeln!(w2, "six").unwrap();
        let mut again = Follower::open(&path, &at, grace).unwrap();
        assert_eq!(read_all(&mut again), ["later", "six"]);
        // A saved current file that was rotated since is read on, then the new one from 0.
        let old = std::fs::metadata(dir.path().join("access.log.1")).unwrap();
        let saved = Positions {
            current: Some((FileId::of(&old), 8)),
            draining: Vec::new(),
        };
        let mut resumed = Follower::open(&path, &saved, grace).unwrap();
        assert_eq!(
            read_all(&mut resumed),
            ["three", "late", "later", "four", "five", "six"]
        );

        // copytruncate: the file shrinks under the reader.
        drop(w2);
        std::fs::write(&path, "").unwrap();
        let mut w3 = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(w3, "7").unwrap();
        assert_eq!(read_all(&mut f), ["later", "7"]);
    }

    #[test]
    fn a_renamed_file_is_let_go_after_the_grace_period_without_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut w = std::fs::File::create(&path).unwrap();
        writeln!(w, "a").unwrap();
        let grace = Duration::from_millis(300);
        let mut f = Follower::open(&path, &Positions::default(), grace).unwrap();
        assert_eq!(read_all(&mut f), ["a"]);
        std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
        std::fs::File::create(&path).unwrap();
        assert_eq!(read_all(&mut f), Vec::<String>::new());
        // Each write restarts the grace period.
        for i in 0..3 {
            std::thread::sleep(Duration::from_millis(150));
            writeln!(w, "old {i}").unwrap();
            assert_eq!(read_all(&mut f), [format!("old {i}")]);
        }
        assert_eq!(f.positions().draining.len(), 1);
        std::thread::sleep(grace + Duration::from_millis(100));
        assert_eq!(read_all(&mut f), Vec::<String>::new());
        assert_eq!(f.positions().draining, Vec::new(), "let go after the grace");
    }
}
