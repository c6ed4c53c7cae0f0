//! Spilling a large transaction's changes to disk, so that memory stays bounded (DESIGN rule 7).
//!
//! A capture collects changes into a [`SpillBuffer`]. While the buffered changes stay under the budget
//! they are kept in memory; the first change that crosses it moves everything to a temporary file, and
//! every later change is appended there. [`SpillBuffer::finish`] returns a [`ChangeSet`] either way,
//! and consumers read it through the same iterator. The file is removed when the set is dropped.
//!
//! File format: one frame per change, a little-endian `u32` length then the change in `postcard`'s
//! compact binary form of the model's serde representation (values carry floats as bit patterns, so
//! nothing is lost). It is private to one process and never read by another version. (It was JSON
//! lines until the seventh session: writing and reading JSON was a third of tandem's CPU on a
//! transaction over the budget.)
//!
//! Files hold row values, so they are created `0600` in a `0700` directory of tandem's own,
//! `<spill_dir or the system temp dir>/tandem-spill-<uid>` ([`private_dir`]), which [`prepare_dir`]
//! creates, refuses when another user owns it or others may enter it, and sweeps: a file named
//! `tandem-spill-<pid>-<n>.bin` (`.jsonl` before the binary format) whose process is gone (killed before it could remove its files) is
//! removed; files of live processes are left alone.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::transaction::{Change, ChangeSet, TableRef};

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
    /// The frame being encoded, reused.
    scratch: Vec<u8>,
    /// The tables the changes touch (see [`SpilledChanges::tables`]); `None` past
    /// [`MAX_TABLES_KEPT`].
    tables: Option<Vec<TableRef>>,
}

/// Distinct tables a spilled set remembers; a transaction touching more reads its file to tell.
const MAX_TABLES_KEPT: usize = 64;

impl SpillBuffer {
    pub fn new(dir: impl Into<PathBuf>, budget_bytes: usize) -> Self {
        SpillBuffer {
            budget_bytes,
            dir: dir.into(),
            in_memory: Vec::new(),
            memory_bytes: 0,
            file: None,
            spilled: 0,
            scratch: Vec::new(),
            tables: Some(Vec::new()),
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
        if let Some(tables) = &mut self.tables {
            if !tables.contains(&change.table) {
                if tables.len() < MAX_TABLES_KEPT {
                    tables.push(change.table.clone());
                } else {
                    self.tables = None;
                }
            }
        }
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
        create_private_dir(&self.dir)?;
        let name = format!(
            "{FILE_PREFIX}{}-{}.bin",
            std::process::id(),
            SPILL_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.dir.join(name);
        let mut options = OpenOptions::new();
        options.create_new(true).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path)?;
        self.file = Some((path, BufWriter::with_capacity(1 << 16, file)));
        Ok(())
    }

    fn write(&mut self, change: &Change) -> io::Result<()> {
        let Some((_, w)) = self.file.as_mut() else {
            return Err(io::Error::other("spill file not open"));
        };
        let frame = encode_change(change, std::mem::take(&mut self.scratch))?;
        w.write_all(&frame)?;
        self.scratch = frame;
        self.scratch.clear();
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
                    tables: self.tables.take(),
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
    tables: Option<Vec<TableRef>>,
}

impl SpilledChanges {
    /// The distinct tables the changes touch, when there are few (`None`: read the file to tell).
    /// A reader of the whole set that only looks for one table's changes (the loop guard, for
    /// the checkpoint) need not read the file back when the table is not among them.
    pub fn tables(&self) -> Option<&[TableRef]> {
        self.tables.as_deref()
    }

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
        let mut changes = match reader {
            Ok(r) => Ok(read_changes(r)),
            Err(e) => Err(Some(e)),
        };
        std::iter::from_fn(move || match &mut changes {
            Ok(c) => c.next(),
            Err(e) => e.take().map(Err),
        })
    }
}

/// Appends `change`'s frame (its length, then its bytes: see the module doc) to `buf`. Public for
/// the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub fn encode_change(change: &Change, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    let mut buf = postcard::to_extend(change, buf).map_err(io::Error::other)?;
    let len = u32::try_from(buf.len() - start - 4)
        .map_err(|_| io::Error::other("a change over 4 GiB cannot be spilled"))?;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(buf)
}

/// Reads spill-file contents: one change per frame (see the module doc). A short or undecodable
/// frame is an error, and the last item. Public for the fuzz targets (`fuzz/`).
#[doc(hidden)]
pub fn read_changes(mut reader: impl BufRead) -> impl Iterator<Item = io::Result<Change>> {
    let mut frame = Vec::new();
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let r = read_frame(&mut reader, &mut frame).and_then(|more| {
            more.then(|| postcard::from_bytes(&frame).map_err(io::Error::other))
                .transpose()
        });
        if !matches!(r, Ok(Some(_))) {
            done = true;
        }
        r.transpose()
    })
}

/// The next frame's bytes into `frame`; `false` at the end of the input. The buffer grows with
/// the bytes read, not with the length the frame claims.
fn read_frame(reader: &mut impl BufRead, frame: &mut Vec<u8>) -> io::Result<bool> {
    if reader.fill_buf()?.is_empty() {
        return Ok(false);
    }
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let len = u64::from(u32::from_le_bytes(len));
    frame.clear();
    reader.take(len).read_to_end(frame)?;
    if frame.len() as u64 != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "spill file ends inside a change",
        ));
    }
    Ok(true)
}

impl Drop for SpilledChanges {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

const FILE_PREFIX: &str = "tandem-spill-";

/// tandem's own spill directory under `base` (the configured `spill_dir`, or the system temp
/// dir): one per user, so that two users' tandems never share one.
pub fn private_dir(base: &Path) -> PathBuf {
    base.join(format!("{FILE_PREFIX}{}", current_uid().unwrap_or(0)))
}

/// Creates `dir` (`0700`) or checks the one there: a real directory, ours, closed to others.
/// Then removes the spill files of processes that no longer run. Returns how many it removed.
pub fn prepare_dir(dir: &Path) -> io::Result<usize> {
    create_private_dir(dir)?;
    check_private(dir)?;
    let Some(alive) = process_table() else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(spill_file_pid) else {
            continue;
        };
        if pid != std::process::id() && !alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// The process id in a spill file's name (`tandem-spill-<pid>-<n>.bin`).
fn spill_file_pid(name: &str) -> Option<u32> {
    // `.jsonl`: the files of versions before the binary format, left by a killed process.
    let rest = name.strip_prefix(FILE_PREFIX)?;
    let rest = rest
        .strip_suffix(".bin")
        .or_else(|| rest.strip_suffix(".jsonl"))?;
    let (pid, seq) = rest.split_once('-')?;
    seq.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether a process id runs, where the system says (`/proc`); `None` where it cannot tell, and
/// then nothing is swept.
fn process_table() -> Option<impl Fn(u32) -> bool> {
    let proc = Path::new("/proc");
    proc.join("self")
        .exists()
        .then_some(move |pid: u32| proc.join(pid.to_string()).exists())
}

#[cfg(unix)]
fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(not(unix))]
fn current_uid() -> Option<u32> {
    None
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn check_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(dir)?;
    let refuse = |why: String| {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{}: {why}; spilled transactions hold row values",
                dir.display()
            ),
        ))
    };
    if !meta.is_dir() {
        return refuse("is not a directory (a symbolic link?)".into());
    }
    if current_uid().is_some_and(|uid| uid != meta.uid()) {
        return refuse(format!(
            "belongs to another user (uid {}); remove it or set spill_dir",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_dir: &Path) -> io::Result<()> {
    Ok(())
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

    #[cfg(unix)]
    #[test]
    fn spill_files_are_private_and_files_of_dead_processes_are_swept() {
        use std::os::unix::fs::PermissionsExt;
        let base =
            std::env::temp_dir().join(format!("tandem-spill-test-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = private_dir(&base);
        assert_eq!(prepare_dir(&dir).unwrap(), 0);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let mut b = SpillBuffer::new(&dir, 0);
        b.push(change(1)).unwrap();
        let set = b.finish().unwrap();
        let ChangeSet::Spilled(s) = &set else {
            panic!("a 0-byte budget kept the change in memory");
        };
        assert_eq!(mode(s.path()), 0o600, "the spill file is private");
        // A file of a process that is gone (a pid above any pid_max), one of this process, and one
        // that is not a spill file.
        let dead = dir.join("tandem-spill-4000000000-7.jsonl");
        let other = dir.join("notes.txt");
        std::fs::write(&dead, "{}").unwrap();
        std::fs::write(&other, "x").unwrap();
        // Opened by others, the directory is closed again.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(prepare_dir(&dir).unwrap(), 1);
        assert_eq!(mode(&dir), 0o700);
        assert!(!dead.exists(), "the dead process's file was swept");
        assert!(s.path().exists(), "this process's file was kept");
        assert!(other.exists());
        drop(set);
        let _ = std::fs::remove_dir_all(&base);
    }

    #[test]
    fn spill_file_names_give_their_process() {
        assert_eq!(spill_file_pid("tandem-spill-123-4.bin"), Some(123));
        assert_eq!(spill_file_pid("tandem-spill-123-4.jsonl"), Some(123));
        assert_eq!(spill_file_pid("tandem-spill-123-4.txt"), None);
        assert_eq!(spill_file_pid("tandem-spill-123.jsonl"), None);
        assert_eq!(spill_file_pid("tandem-spill-x-4.jsonl"), None);
        assert_eq!(spill_file_pid("other"), None);
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

    /// Every kind of value, in every image a change can carry, survives the file.
    #[test]
    fn every_value_kind_reads_back_from_a_spill_file() {
        let values = vec![
            Value::Null,
            Value::Unchanged,
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Float32(-0.0),
            Value::Float64(f64::INFINITY),
            Value::Decimal("-12345678901234567890.123456789".parse().unwrap()),
            Value::Text("naïve \u{1F600} \0 \n".into()),
            Value::Bytes(vec![0, 255, 10]),
            Value::Json("{\"a\": [1, 2.50]}".into()),
            Value::Uuid([7; 16]),
            Value::Date(i32::MAX),
            Value::Time(86_399_999_999),
            Value::TimeTz {
                micros: 1,
                offset_secs: -34_200,
            },
            Value::Timestamp(i64::MAX),
            Value::TimestampTz(-1),
            Value::Interval {
                months: -1,
                days: 2,
                micros: -3,
            },
            Value::Enum(String::new()),
            Value::Set(vec!["a".into(), "b,c".into()]),
            Value::Bits {
                len: 3,
                bytes: vec![0b1010_0000],
            },
            Value::Geometry {
                srid: 4326,
                wkb: vec![1, 1, 0, 0, 0],
            },
            Value::Array(vec![Value::Array(vec![Value::Null, Value::Int(1)])]),
            Value::Other {
                type_name: "tsvector".into(),
                text: "'a':1".into(),
            },
        ];
        let image = |kind| {
            let fields = values
                .iter()
                .enumerate()
                .map(|(i, v)| Field {
                    name: format!("c{i}").into(),
                    value: v.clone(),
                })
                .collect();
            Some(RowImage::new(kind, fields))
        };
        let changes = vec![
            Change {
                table: TableRef::new("s", "t"),
                op: Op::Update,
                before: image(ImageKind::Key),
                after: image(ImageKind::Partial),
            },
            Change {
                table: TableRef::new("s", "t"),
                op: Op::Truncate,
                before: None,
                after: None,
            },
        ];
        let dir = std::env::temp_dir().join("tandem-spill-test-kinds");
        let mut b = SpillBuffer::new(&dir, 0);
        for c in &changes {
            b.push(c.clone()).unwrap();
        }
        let set = b.finish().unwrap();
        assert!(matches!(set, ChangeSet::Spilled(_)));
        let back: Vec<Change> = set.iter().map(Result::unwrap).collect();
        assert_eq!(back, changes);
    }

    #[test]
    fn a_cut_short_file_is_an_error_and_the_end() {
        let dir = std::env::temp_dir().join("tandem-spill-test-cut");
        let mut b = SpillBuffer::new(&dir, 0);
        for i in 0..3 {
            b.push(change(i)).unwrap();
        }
        let set = b.finish().unwrap();
        let ChangeSet::Spilled(s) = &set else {
            panic!("a zero budget spills");
        };
        let bytes = std::fs::read(s.path()).unwrap();
        let cut = &bytes[..bytes.len() - 5];
        let read: Vec<io::Result<Change>> = read_changes(cut).collect();
        assert_eq!(read.len(), 3, "two changes, then the error");
        assert_eq!(read[1].as_ref().unwrap(), &change(1));
        let err = read[2].as_ref().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // A frame claiming 4 GiB reads only what is there.
        let huge = [0xff, 0xff, 0xff, 0xff, 1, 2];
        assert!(read_changes(&huge[..]).next().unwrap().is_err());
    }
}
