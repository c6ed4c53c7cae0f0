//! How a [`Value`] travels through serde: as `{"t": "<variant>", "v": …}` in a human-readable
//! format (JSON: dead letters, `tandem tail`), as the variant's index and fields in a binary one (the
//! spill files' `postcard`), which is what a format without self-description can read back.

use serde::{Deserialize, Serialize};

use super::{Decimal, Value};

/// Value's serde forms, one variant list for both (`remote` derives that read and write [`Value`]
/// itself): in a human-readable format (JSON: dead letters, `tandem tail`) each value is
/// `{"t": "<variant>", "v": …}`; in a binary one (the spill files' `postcard`) the variant's index
/// and its fields, which is what a format without self-description can read back.
macro_rules! value_serde {
    ($name:ident $(, $attr:meta)*) => {
        #[derive(Serialize, Deserialize)]
        #[serde(remote = "Value")]
        $(#[serde($attr)])*
        enum $name {
            Null,
            Unchanged,
            Bool(bool),
            Int(i64),
            UInt(u64),
            Float32(#[serde(with = "f32_bits")] f32),
            Float64(#[serde(with = "f64_bits")] f64),
            Decimal(Decimal),
            Text(String),
            Bytes(Vec<u8>),
            Json(String),
            Uuid([u8; 16]),
            Date(i32),
            Time(i64),
            TimeTz { micros: i64, offset_secs: i32 },
            Timestamp(i64),
            TimestampTz(i64),
            Interval { months: i32, days: i32, micros: i64 },
            Enum(String),
            Set(Vec<String>),
            Bits { len: u32, bytes: Vec<u8> },
            Geometry { srid: u32, wkb: Vec<u8> },
            Array(Vec<Value>),
            Other { type_name: String, text: String },
        }
    };
}

value_serde!(
    ValueText,
    tag = "t",
    content = "v",
    rename_all = "snake_case"
);
value_serde!(ValueBinary);

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            ValueText::serialize(self, s)
        } else {
            ValueBinary::serialize(self, s)
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        if d.is_human_readable() {
            ValueText::deserialize(d)
        } else {
            ValueBinary::deserialize(d)
        }
    }
}

/// Floats travel through serde as their bit patterns so that NaN, infinities and `-0.0` survive a
/// spill file (JSON has no NaN).
mod f64_bits {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(x.to_bits())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        u64::deserialize(d).map(f64::from_bits)
    }
}

mod f32_bits {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(x: &f32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(x.to_bits())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        u32::deserialize(d).map(f32::from_bits)
    }
}
