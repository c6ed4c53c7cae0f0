//! Spilling a large transaction's changes to disk, so that memory stays bounded (DESIGN rule 7).
//!
//! A capture collects changes into a [`SpillBuffer`]. While the buffered changes stay under the budget
//! they are kept in memory; the first change that crosses it moves everything to a temporary file, and
//! every later change is appended there. [`SpillBuffer::finish`] returns a [`ChangeSet`] either way,
//! and consumers read it through the same iterator. The file is removed when the set is dropped.
//!
//! File format: one JSON document per change, newline-terminated (values carry floats as bit patterns,
//! so nothing is lost). It is private to one process and never read by another version.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::transaction::{Change, ChangeSet};

static SPILL_SEQ: AtomicU64 = AtomicU64::new(0);

/// Collects a transaction's changes in memory up to `budget_bytes`, then in a file under `dir`.
#[derive(Debug)]
pub struct SpillBuffer {
    budget_bytes: usize,
    dir: PathBuf,
    in_memory: Vec<Change>,
    memory_bytes: usize,
    file: Option<(PathBuf, BufWriter<File>)>,
    spilled: usize,
}

impl SpillBuffer {
    pub fn new(dir: impl Into<PathBuf>, budget_bytes: usize) -> Self {
        SpillBuffer {
            budget_bytes,
            dir: dir.into(),
            in_memory: Vec::new(),
            memory_bytes: 0,
            file: None,
            spilled: 0,
        }
    }

    /// Whether the buffer has moved to disk.
    pub fn is_spilled(&self) -> bool {
        self.file.is_some()
    }

    /// Bytes held in memory right now (approximate).
    pub fn memory_bytes(&self) -> usize {
        self.memory_bytes
    }

    pub fn len(&self) -> usize {
        self.in_memory.len() + self.spilled
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, change: Change) -> io::Result<()> {
        if self.file.is_none() {
            let size = change.approx_bytes();
            if self.memory_bytes + size <= self.budget_bytes {
                self.memory_bytes += size;
                self.in_memory.push(change);
                return Ok(());
            }
            self.open_file()?;
            for c in std::mem::take(&mut self.in_memory) {
                self.write(&c)?;
            }
            self.memory_bytes = 0;
        }
        self.write(&change)
    }

    fn open_file(&mut self) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let name = format!(
            "tandem-spill-{}-{}.jsonl",
            std::process::id(),
            SPILL_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.dir.join(name);
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)?;
        self.file = Some((path, BufWriter::with_capacity(1 << 16, file)));
        Ok(())
    }

    fn write(&mut self, change: &Change) -> io::Result<()> {
        let Some((_, w)) = self.file.as_mut() else {
            return Err(io::Error::other("spill file not open"));
        };
        serde_json::to_writer(&mut *w, change)?;
        w.write_all(b"\n")?;
        self.spilled += 1;
        Ok(())
    }

    /// Ends the transaction: its changes, in memory or in a file.
    pub fn finish(mut self) -> io::Result<ChangeSet> {
        match self.file.take() {
            None => Ok(ChangeSet::Memory(std::mem::take(&mut self.in_memory))),
            Some((path, mut w)) => {
                w.flush()?;
                Ok(ChangeSet::Spilled(SpilledChanges {
                    path,
                    len: self.spilled,
                }))
            }
        }
    }
}

impl Drop for SpillBuffer {
    fn drop(&mut self) {
        if let Some((path, _)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Changes stored in a spill file; the file is deleted on drop.
#[derive(Debug)]
pub struct SpilledChanges {
    path: PathBuf,
    len: usize,
}

impl SpilledChanges {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn iter(&self) -> impl Iterator<Item = io::Result<Change>> + '_ {
        let reader = File::open(&self.path).map(|f| BufReader::with_capacity(1 << 16, f));
        let mut lines = match reader {
            Ok(r) => Ok(r.lines()),
            Err(e) => Err(Some(e)),
        };
        std::iter::from_fn(move || match &mut lines {
            Ok(l) => l
                .next()
                .map(|line| line.and_then(|t| serde_json::from_str(&t).map_err(io::Error::other))),
            Err(e) => e.take().map(Err),
        })
    }
}

impl Drop for SpilledChanges {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Field, ImageKind, Op, RowImage, TableRef, Value};

    fn change(i: i64) -> Change {
        Change {
            table: TableRef::new("public", "t"),
            op: Op::Insert,
            before: None,
            after: Some(RowImage::new(
                ImageKind::Full,
                vec![
                    Field {
                        name: "id".into(),
                        value: Value::Int(i),
                    },
                    Field {
                        name: "f".into(),
                        value: Value::Float64(f64::NAN),
                    },
                    Field {
                        name: "pad".into(),
                        value: Value::Text("x".repeat(100)),
                    },
                ],
            )),
        }
    }

    #[test]
    fn small_transactions_stay_in_memory() {
        let dir = std::env::temp_dir().join("tandem-spill-test-small");
        let mut b = SpillBuffer::new(&dir, 1 << 20);
        for i in 0..10 {
            b.push(change(i)).unwrap();
        }
        assert!(!b.is_spilled());
        let set = b.finish().unwrap();
        assert!(matches!(set, ChangeSet::Memory(ref v) if v.len() == 10));
    }

    #[test]
    fn large_transactions_spill_and_read_back_in_order() {
        let dir = std::env::temp_dir().join("tandem-spill-test-large");
        let mut b = SpillBuffer::new(&dir, 4096);
        for i in 0..1000 {
            b.push(change(i)).unwrap();
            assert!(b.memory_bytes() <= 4096);
        }
        assert!(b.is_spilled());
        let set = b.finish().unwrap();
        let path = match &set {
            ChangeSet::Spilled(s) => s.path().to_path_buf(),
            ChangeSet::Memory(_) => panic!("1000 changes over a 4 KiB budget stayed in memory"),
        };
        assert_eq!(set.len(), 1000);
        for (i, c) in set.iter().enumerate() {
            assert_eq!(c.unwrap(), change(i as i64));
        }
        drop(set);
        assert!(
            !path.exists(),
            "spill file {path:?} outlived its change set"
        );
    }
}
