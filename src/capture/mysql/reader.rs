//! A bounds-checked reader over event bytes, and the decoders' error type.

/// Why a value could not be decoded. Carries no row data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("event truncated: needed {needed} more bytes")]
    Truncated { needed: usize },
    #[error("unsupported binlog column type {0}")]
    UnsupportedType(u8),
    #[error("malformed {0} value")]
    Malformed(&'static str),
    #[error("column charset {0} is not supported (use utf8mb4, latin1 or binary)")]
    UnsupportedCharset(String),
    #[error("text is not valid in the column charset")]
    BadText,
    #[error("enum index {0} outside the column's labels")]
    EnumIndex(u64),
    #[error("set bitmap names a member the column does not have")]
    SetBits,
    #[error("malformed binary JSON: {0}")]
    Json(String),
}

/// A bounds-checked reader over event bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated {
                needed: n - self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned little-endian integer of `n` (<= 8) bytes.
    pub fn uint_le(&mut self, n: usize) -> Result<u64, DecodeError> {
        let b = self.take(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// An unsigned big-endian integer of `n` (<= 8) bytes.
    pub fn uint_be(&mut self, n: usize) -> Result<u64, DecodeError> {
        let b = self.take(n)?;
        Ok(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// A length-encoded integer (protocol `int<lenenc>`).
    pub fn lenenc(&mut self) -> Result<u64, DecodeError> {
        match self.u8()? {
            x @ 0..=250 => Ok(u64::from(x)),
            0xFC => self.uint_le(2),
            0xFD => self.uint_le(3),
            0xFE => self.uint_le(8),
            _ => Err(DecodeError::Malformed("length-encoded integer")),
        }
    }
}
