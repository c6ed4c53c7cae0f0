//! A pure decoder for the pgoutput logical replication protocol (versions 1 and 2): bytes in, messages
//! out. No I/O, no allocation beyond the decoded message, and no panics: every malformed or truncated
//! input is a [`DecodeError`].
//!
//! Implements PostgreSQL's "Logical Replication Message Formats" (protocol chapter, section 55.9 in the
//! PostgreSQL 15 manual). That document opens: "These messages are either returned by the replication
//! slot SQL interface or are sent by a walsender. In the case of a walsender, they are encapsulated
//! inside replication protocol WAL messages". The framing around them (XLogData) lives in `conn.rs`.
//!
//! Values stay as raw column bytes here ([`TupleValue`]); `types.rs` turns them into model values once
//! the relation (and so each column's type) is known.

use bytes::Bytes;

/// A decoding failure; says what was being read, never the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message truncated while reading {0}")]
    Truncated(&'static str),
    #[error("unknown pgoutput message tag {0:#04x}")]
    UnknownTag(u8),
    #[error("invalid {what} byte {byte:#04x}")]
    Invalid { what: &'static str, byte: u8 },
    #[error("negative length in {0}")]
    NegativeLength(&'static str),
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
    #[error("empty message")]
    Empty,
}

/// One column of a Relation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// "Flags for the column. Currently can be either 0 for no flags or 1 which marks the column as part
    /// of the key."
    pub key: bool,
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
}

/// One column value of a TupleData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    /// 'n': "Identifies the data as NULL value."
    Null,
    /// 'u': "Identifies unchanged TOASTed value (the actual value is not sent)."
    Unchanged,
    /// 't': "Identifies the data as text formatted value."
    Text(Bytes),
    /// 'b': "Identifies the data as binary formatted value."
    Binary(Bytes),
}

/// The old row an Update or Delete carries: 'K' (key columns only) or 'O' (the whole old row, with
/// REPLICA IDENTITY FULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    Key(Vec<TupleValue>),
    Full(Vec<TupleValue>),
}

/// One decoded pgoutput message. `xid` fields are present only inside a streamed block (protocol v2):
/// "Xid of the transaction (only present for streamed transactions). This field is available since
/// protocol version 2."
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgOutput {
    Begin {
        final_lsn: u64,
        commit_time: i64,
        xid: u32,
    },
    Commit {
        flags: u8,
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
    },
    Origin {
        commit_lsn: u64,
        name: String,
    },
    Relation {
        xid: Option<u32>,
        oid: u32,
        namespace: String,
        name: String,
        replica_identity: u8,
        columns: Vec<Column>,
    },
    Type {
        xid: Option<u32>,
        oid: u32,
        namespace: String,
        name: String,
    },
    Insert {
        xid: Option<u32>,
        oid: u32,
        new: Vec<TupleValue>,
    },
    Update {
        xid: Option<u32>,
        oid: u32,
        old: Option<OldTuple>,
        new: Vec<TupleValue>,
    },
    Delete {
        xid: Option<u32>,
        oid: u32,
        old: OldTuple,
    },
    Truncate {
        xid: Option<u32>,
        /// "Option bits for TRUNCATE: 1 for CASCADE, 2 for RESTART IDENTITY"
        options: u8,
        oids: Vec<u32>,
    },
    Message {
        xid: Option<u32>,
        transactional: bool,
        lsn: u64,
        prefix: String,
        content: Bytes,
    },
    StreamStart {
        xid: u32,
        first_segment: bool,
    },
    StreamStop,
    StreamCommit {
        xid: u32,
        flags: u8,
        commit_lsn: u64,
        end_lsn: u64,
        commit_time: i64,
    },
    StreamAbort {
        xid: u32,
        subxid: u32,
    },
}

/// Decodes one pgoutput message. `in_stream` says whether the message arrived between Stream Start and
/// Stream Stop, where data messages carry their (sub)transaction's xid.
pub fn decode(data: &Bytes, in_stream: bool) -> Result<PgOutput, DecodeError> {
    let mut r = Reader { buf: data, pos: 0 };
    let tag = r.u8("message tag").map_err(|_| DecodeError::Empty)?;
    let r = &mut r;
    match tag {
        b'B' => begin(r),
        b'C' => commit(r),
        b'O' => origin(r),
        b'R' => relation(r, in_stream),
        b'Y' => type_message(r, in_stream),
        b'I' => insert(r, in_stream),
        b'U' => update(r, in_stream),
        b'D' => delete(r, in_stream),
        b'T' => truncate(r, in_stream),
        b'M' => logical_message(r, in_stream),
        b'S' => stream_start(r),
        b'E' => Ok(PgOutput::StreamStop),
        b'c' => stream_commit(r),
        b'A' => stream_abort(r),
        other => Err(DecodeError::UnknownTag(other)),
    }
}

// One function per message, each reading the fields in the order the protocol document lists them
// (after the tag byte, which `decode` has read).

fn begin(r: &mut Reader) -> Result<PgOutput, DecodeError> {
    Ok(PgOutput::Begin {
        final_lsn: r.u64("begin final lsn")?,
        commit_time: r.i64("begin commit time")?,
        xid: r.u32("begin xid")?,
    })
}

fn commit(r: &mut Reader) -> Result<PgOutput, DecodeError> {
    Ok(PgOutput::Commit {
        flags: r.u8("commit flags")?,
        commit_lsn: r.u64("commit lsn")?,
        end_lsn: r.u64("commit end lsn")?,
        commit_time: r.i64("commit time")?,
    })
}

/// "Note that there can be multiple Origin messages inside a single transaction."
fn origin(r: &mut Reader) -> Result<PgOutput, DecodeError> {
    Ok(PgOutput::Origin {
        commit_lsn: r.u64("origin lsn")?,
        name: r.string("origin name")?,
    })
}

fn relation(r: &mut Reader, in_stream: bool) -> Result<PgOutput, DecodeError> {
    let xid = r.xid(in_stream)?;
    let oid = r.u32("relation oid")?;
    let namespace = r.string("relation namespace")?;
    let name = r.string("relation name")?;
    let replica_identity = r.u8("replica identity")?;
    let n = r.i16("column count")?;
    let n = usize::try_from(n).map_err(|_| DecodeError::NegativeLength("column count"))?;
    // Cap the preallocation by what the remaining bytes could hold (>= 10 bytes a column).
    let mut columns = Vec::with_capacity(n.min(r.remaining() / 10));
    for _ in 0..n {
        columns.push(Column {
            key: r.u8("column flags")? & 1 == 1,
            name: r.string("column name")?,
            type_oid: r.u32("column type")?,
            type_modifier: r.i32("column type modifier")?,
        });
    }
    Ok(PgOutput::Relation {
        xid,
        oid,
        namespace,
        name,
        replica_identity,
        columns,
    })
}

fn type_message(r: &mut Reader, in_stream: bool) -> Result<PgOutput, DecodeError> {
    Ok(PgOutput::Type {
        xid: r.xid(in_stream)?,
        oid: r.u32("type oid")?,
        namespace: r.string("type namespace")?,
        name: r.string("type name")?,
    })
}

fn insert(r: &mut Reader, in_stream: bool) -> Result<PgOutput, DecodeError> {
    let xid = r.xid(in_stream)?;
    let oid = r.u32("insert relation")?;
    r.expect(b'N', "insert tuple marker")?;
    Ok(PgOutput::Insert {
        xid,
        oid,
        new: r.tuple()?,
    })
}

/// "Byte1('K'): Identifies the following TupleData submessage as a key. This field is optional
/// and is only present if the update changed data in any of the column(s) that are part of the
/// REPLICA IDENTITY index. Byte1('O'): Identifies the following TupleData submessage as an old
/// tuple. This field is optional and is only present if table in which the update happened has
/// REPLICA IDENTITY set to FULL."
fn update(r: &mut Reader, in_stream: bool) -> Result<PgOutput, DecodeError> {
    let xid = r.xid(in_stream)?;
    let oid = r.u32("update relation")?;
    let old = match r.u8("update tuple marker")? {
        b'K' => Some(OldTuple::Key(r.tuple()?)),
        b'O' => Some(OldTuple::Full(r.tuple()?)),
        b'N' => None,
        byte => {
            return Err(DecodeError::Invalid {
                what: "update tuple marker",
                byte,
            })
        }
    };
    if old.is_some() {
        r.expect(b'N', "update new tuple marker")?;
    }
    Ok(PgOutput::Update {
        xid,
        oid,
        old,
        new: r.tuple()?,
    })
}

fn delete(r: &mut Reader, in_stream: bool) -> Result<PgOutput, DecodeError> {
    let xid = r.xid(in_stream)?;
    let oid = r.u32("delete relation")?;
    let old = match r.u8("delete tuple marker")? {
        b'K' => OldTuple::Key(r.tuple()?),
        b'O' => OldTuple::Full(r.tuple()?),
        byte => {
            return Err(DecodeError::Invalid {
                what: "delete tuple marker",
                byte,
            })
        }
    };
    Ok(PgOutput::Delete { xid, oid, old })
}

fn truncate(r: &mut Reader, in_stream: bool) -> Result<PgOutput, DecodeError> {
    let xid = r.xid(in_stream)?;
    let n = r.i32("truncate relation count")?;
    let n =
        usize::try_from(n).map_err(|_| DecodeError::NegativeLength("truncate relation count"))?;
    let options = r.u8("truncate options")?;
    let mut oids = Vec::with_capacity(n.min(r.remaining() / 4));
    for _ in 0..n {
        oids.push(r.u32("truncate relation")?);
    }
    Ok(PgOutput::Truncate { xid, options, oids })
}

fn logical_message(r: &mut Reader, in_stream: bool) -> Result<PgOutput, DecodeError> {
    let xid = r.xid(in_stream)?;
    let transactional = r.u8("message flags")? & 1 == 1;
    let lsn = r.u64("message lsn")?;
    let prefix = r.string("message prefix")?;
    let len = r.i32("message length")?;
    Ok(PgOutput::Message {
        xid,
        transactional,
        lsn,
        prefix,
        content: r.bytes(len, "message content")?,
    })
}

/// Protocol v2: "Stream Start ... Int32 (TransactionId) Xid of the transaction. Int8 A value of 1
/// indicates this is the first stream segment for this XID, 0 for any other stream segment."
fn stream_start(r: &mut Reader) -> Result<PgOutput, DecodeError> {
    Ok(PgOutput::StreamStart {
        xid: r.u32("stream start xid")?,
        first_segment: r.u8("stream first segment")? == 1,
    })
}

fn stream_commit(r: &mut Reader) -> Result<PgOutput, DecodeError> {
    Ok(PgOutput::StreamCommit {
        xid: r.u32("stream commit xid")?,
        flags: r.u8("stream commit flags")?,
        commit_lsn: r.u64("stream commit lsn")?,
        end_lsn: r.u64("stream commit end lsn")?,
        commit_time: r.i64("stream commit time")?,
    })
}

/// "Stream Abort ... Int32 (TransactionId) Xid of the transaction. Int32 (TransactionId) Xid of
/// the subtransaction (will be same as xid of the transaction for top-level transactions)."
/// Protocol v4 appends abort LSN and time; v2 (what tandem asks for) does not.
fn stream_abort(r: &mut Reader) -> Result<PgOutput, DecodeError> {
    Ok(PgOutput::StreamAbort {
        xid: r.u32("stream abort xid")?,
        subxid: r.u32("stream abort subxid")?,
    })
}

/// A bounds-checked cursor over a message.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    /// "Xid of the transaction (only present for streamed transactions)": read inside a streamed
    /// block only.
    fn xid(&mut self, in_stream: bool) -> Result<Option<u32>, DecodeError> {
        if in_stream {
            Ok(Some(self.u32("xid")?))
        } else {
            Ok(None)
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Truncated(what))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated(what))?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), DecodeError> {
        match self.u8(what)? {
            b if b == byte => Ok(()),
            b => Err(DecodeError::Invalid { what, byte: b }),
        }
    }

    /// A NUL-terminated string.
    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::Truncated(what))?;
        let s = std::str::from_utf8(&rest[..nul]).map_err(|_| DecodeError::Utf8(what))?;
        let s = s.to_owned();
        self.pos += nul + 1;
        Ok(s)
    }

    /// `len` bytes as a zero-copy slice of the message.
    fn bytes(&mut self, len: i32, what: &'static str) -> Result<Bytes, DecodeError> {
        let n = usize::try_from(len).map_err(|_| DecodeError::NegativeLength(what))?;
        let start = self.pos;
        self.take(n, what)?;
        Ok(self.buf.slice(start..start + n))
    }

    /// "TupleData: Int16 Number of columns. Next, one of the following submessages appears for each
    /// column (except generated columns)": 'n' NULL, 'u' unchanged TOAST, 't' text, 'b' binary, the
    /// last two followed by "Int32 Length of the column value" and the value's bytes.
    fn tuple(&mut self) -> Result<Vec<TupleValue>, DecodeError> {
        let n = self.i16("tuple column count")?;
        let n =
            usize::try_from(n).map_err(|_| DecodeError::NegativeLength("tuple column count"))?;
        let mut out = Vec::with_capacity(n.min(self.remaining()));
        for _ in 0..n {
            let v = match self.u8("tuple column kind")? {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::Unchanged,
                b't' => {
                    let len = self.i32("text value length")?;
                    TupleValue::Text(self.bytes(len, "text value")?)
                }
                b'b' => {
                    let len = self.i32("binary value length")?;
                    TupleValue::Binary(self.bytes(len, "binary value")?)
                }
                byte => {
                    return Err(DecodeError::Invalid {
                        what: "tuple column kind",
                        byte,
                    })
                }
            };
            out.push(v);
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
