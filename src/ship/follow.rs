//! Following a log file like `tail -F`: whole lines only, with the byte offset after each, and
//! rotation by rename (the file at the path changes) or by copytruncate (it shrinks).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

/// A line read, and the offset just after it in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub file: FileId,
    pub end: u64,
}

/// The reader.
pub struct Follower {
    path: PathBuf,
    file: Option<(File, FileId)>,
    offset: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Starts at `offset` in the file `at`, wherever it is now (a rotated file is found again in
    /// the log's directory by its identity and read to its end first); else at `offset` in the
    /// current file when `at` is unknown, or at 0 when the saved file is gone.
    pub fn open(path: &Path, at: Option<FileId>, offset: u64) -> std::io::Result<Follower> {
        let mut f = Follower {
            path: path.to_path_buf(),
            file: None,
            offset: 0,
            partial: Vec::new(),
        };
        let current = std::fs::metadata(path).ok().map(|m| FileId::of(&m));
        match at {
            Some(id) if Some(id) == current || at.is_none() => f.attach(path, offset)?,
            Some(id) => match find_by_id(path, id) {
                Some(rotated) => {
                    tracing::info!(file = %rotated.display(), "resuming in the rotated log file");
                    f.attach(&rotated, offset)?;
                }
                None => {
                    tracing::warn!(log = %path.display(), "the file of the saved position is gone; starting the current file from its beginning");
                    if current.is_some() {
                        f.attach(path, 0)?;
                    }
                }
            },
            None => {
                if current.is_some() {
                    f.attach(path, offset)?;
                }
            }
        }
        Ok(f)
    }

    fn attach(&mut self, path: &Path, offset: u64) -> std::io::Result<()> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let offset = if offset > meta.len() { 0 } else { offset };
        file.seek(SeekFrom::Start(offset))?;
        self.file = Some((file, FileId::of(&meta)));
        self.offset = offset;
        self.partial.clear();
        Ok(())
    }

    /// The file and offset of the last whole line returned.
    pub fn position(&self) -> Option<(FileId, u64)> {
        self.file
            .as_ref()
            .map(|(_, id)| (*id, self.offset - self.partial.len() as u64))
    }

    /// Up to `max` whole lines; empty when there is nothing new (rotation is handled here).
    pub fn read_lines(&mut self, max: usize) -> std::io::Result<Vec<Line>> {
        let mut lines = Vec::new();
        if self.file.is_none() {
            if std::fs::metadata(&self.path).is_err() {
                return Ok(lines);
            }
            self.attach(&self.path.clone(), 0)?;
        }
        let mut buf = [0u8; 64 * 1024];
        loop {
            let (file, id) = self.file.as_mut().expect("attached");
            let id = *id;
            let n = file.read(&mut buf)?;
            if n == 0 {
                if !lines.is_empty() {
                    return Ok(lines);
                }
                // At the end: has the log been rotated?
                let current = std::fs::metadata(&self.path).ok();
                match current {
                    Some(meta) if FileId::of(&meta) != id => {
                        // Renamed away: what was written to the old file before it was reopened
                        // has been read; continue with the new file.
                        tracing::info!(log = %self.path.display(), "log rotated (renamed); following the new file");
                        if !self.partial.is_empty() {
                            tracing::warn!(
                                bytes = self.partial.len(),
                                "the rotated file ended without a newline; that part is skipped"
                            );
                        }
                        self.attach(&self.path.clone(), 0)?;
                        continue;
                    }
                    Some(meta) if meta.len() < self.offset => {
                        tracing::info!(log = %self.path.display(), "log truncated (copytruncate); reading from its beginning");
                        self.attach(&self.path.clone(), 0)?;
                        continue;
                    }
                    _ => return Ok(lines),
                }
            }
            self.offset += n as u64;
            let start_of_partial = self.offset - n as u64 - self.partial.len() as u64;
            self.partial.extend_from_slice(&buf[..n]);
            let mut consumed = 0;
            while let Some(nl) = self.partial[consumed..].iter().position(|b| *b == b'\n') {
                let end = consumed + nl + 1;
                let text = String::from_utf8_lossy(&self.partial[consumed..end - 1]).into_owned();
                lines.push(Line {
                    text,
                    file: id,
                    end: start_of_partial + end as u64,
                });
                consumed = end;
            }
            self.partial.drain(..consumed);
            if lines.len() >= max {
                return Ok(lines);
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

    #[test]
    fn whole_lines_only_and_rotation_by_rename_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        let mut w = std::fs::File::create(&path).unwrap();
        write!(w, "one\ntw").unwrap();
        let mut f = Follower::open(&path, None, 0).unwrap();
        let lines = f.read_lines(100).unwrap();
        assert_eq!(
            lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["one"]
        );
        assert_eq!(lines[0].end, 4);
        assert_eq!(f.position().unwrap().1, 4, "a partial line is not consumed");
        writeln!(w, "o").unwrap();
        assert_eq!(f.read_lines(100).unwrap()[0].text, "two");

        // Rename rotation: the old file keeps its last lines, the new one starts afresh.
        writeln!(w, "three").unwrap();
        std::fs::rename(&path, dir.path().join("access.log.1")).unwrap();
        let mut w2 = std::fs::File::create(&path).unwrap();
        writeln!(w2, "four").unwrap();
        let texts: Vec<String> = (0..3)
            .flat_map(|_| f.read_lines(100).unwrap())
            .map(|l| l.text)
            .collect();
        assert_eq!(texts, ["three", "four"]);

        // A saved position in the rotated file is found again by identity.
        let old = std::fs::metadata(dir.path().join("access.log.1")).unwrap();
        let mut again = Follower::open(&path, Some(FileId::of(&old)), 8).unwrap();
        let texts: Vec<String> = (0..3)
            .flat_map(|_| again.read_lines(100).unwrap())
            .map(|l| l.text)
            .collect();
        assert_eq!(texts, ["three", "four"]);

        // copytruncate: the file shrinks under the reader.
        drop(w2);
        std::fs::write(&path, "").unwrap();
        let mut w3 = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        writeln!(w3, "5").unwrap();
        let texts: Vec<String> = (0..3)
            .flat_map(|_| f.read_lines(100).unwrap())
            .map(|l| l.text)
            .collect();
        assert_eq!(texts, ["5"]);
    }
}
