use super::*;
use crate::capture::mysql::decimal::DIG2BYTES;
use crate::model::time::{days_from_civil, MICROS_PER_DAY};
use proptest::prelude::*;

fn col(ty: ColType) -> ColumnDecoder {
    ColumnDecoder::new(ty)
}

fn decode(c: &ColumnDecoder, bytes: &[u8]) -> Result<Value, DecodeError> {
    let mut r = Reader::new(bytes);
    let v = decode_value(c, &mut r)?;
    assert!(r.is_empty(), "{} bytes left over", r.remaining().len());
    Ok(v)
}

/// Encodes a decimal the way MySQL's `decimal2bin` does, from the documented layout.
fn encode_decimal(text: &str, precision: u8, scale: u8) -> Vec<u8> {
    let neg = text.starts_with('-');
    let body = text.trim_start_matches('-');
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let intg = usize::from(precision - scale);
    let int = format!("{int:0>intg$}");
    let frac = format!("{frac:0<width$}", width = usize::from(scale));
    let mut out = Vec::new();
    let mut push = |digits: &str| {
        if digits.is_empty() {
            return;
        }
        let n = if digits.len() == 9 {
            4
        } else {
            DIG2BYTES[digits.len()]
        };
        let v: u64 = digits.parse().unwrap();
        out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
    };
    let lead = intg % 9;
    push(&int[..lead]);
    for g in int.as_bytes()[lead..].chunks(9) {
        push(std::str::from_utf8(g).unwrap());
    }
    for g in frac.as_bytes().chunks(9) {
        push(std::str::from_utf8(g).unwrap());
    }
    if neg {
        out.iter_mut().for_each(|b| *b = !*b);
    }
    out[0] ^= 0x80;
    out
}

#[test]
fn decimal_matches_the_documented_example() {
    // MySQL manual (decimal2bin): DECIMAL(14,4) 1234567890.1234 and its negation.
    let c = col(ColType::Decimal {
        precision: 14,
        scale: 4,
    });
    let pos = [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2];
    let neg = [0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D];
    assert_eq!(decode(&c, &pos).unwrap().to_string(), "1234567890.1234");
    assert_eq!(decode(&c, &neg).unwrap().to_string(), "-1234567890.1234");
    assert_eq!(encode_decimal("1234567890.1234", 14, 4), pos);
    assert!(
        decode(&c, &[0x81, 0x3B, 0x9A, 0xCA, 0x00, 0, 0]).is_err(),
        "group >= 10^9"
    );
}

proptest! {
    #[test]
    fn decimal_round_trips(int in "[0-9]{1,35}", frac in "[0-9]{30}", neg in any::<bool>()) {
        let text = format!("{}{int}.{frac}", if neg { "-" } else { "" });
        let bytes = encode_decimal(&text, 65, 30);
        let got = decode(&col(ColType::Decimal { precision: 65, scale: 30 }), &bytes).unwrap();
        prop_assert_eq!(got, Value::Decimal(text.parse().unwrap()));
    }

    #[test]
    fn decoding_never_panics(ty in 0u8..=255, m0 in any::<u8>(), m1 in any::<u8>(),
                             unsigned in any::<bool>(),
                             data in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(t) = ColType::from_binlog(ty, &[m0, m1]) {
            let mut c = col(t);
            c.unsigned = unsigned;
            c.charset = Some(Charset::Utf8);
            c.enum_values = vec!["a".to_string()].into();
            c.set_values = vec!["x".to_string(), "y".to_string()].into();
            let _ = decode_value(&c, &mut Reader::new(&data));
        }
    }
}

#[test]
fn integers_keep_sign_and_range() {
    let mut c = col(ColType::LongLong);
    c.unsigned = true;
    assert_eq!(decode(&c, &[0xFF; 8]).unwrap(), Value::UInt(u64::MAX));
    c.unsigned = false;
    assert_eq!(decode(&c, &[0xFF; 8]).unwrap(), Value::Int(-1));
    assert_eq!(
        decode(&col(ColType::Int24), &[0, 0, 0x80]).unwrap(),
        Value::Int(-8_388_608)
    );
    assert!(decode(&col(ColType::Long), &[1, 2]).is_err());
}

#[test]
fn temporal_values() {
    // TIME(2) -00:00:01.50: int part -2 with a borrowed fraction (my_time_packed_to_binary).
    let t = col(ColType::Time2 { fsp: 2 });
    assert_eq!(
        decode(&t, &[0x7F, 0xFF, 0xFE, 206]).unwrap(),
        Value::Time(-1_500_000)
    );
    // TIME(0) 838:59:59
    let int = (838i64 << 12) | (59 << 6) | 59;
    let b = ((int + 0x80_0000) as u32).to_be_bytes();
    assert_eq!(
        decode(&col(ColType::Time2 { fsp: 0 }), &b[1..]).unwrap(),
        Value::Time(3_020_399_000_000)
    );
    // DATETIME(6) 2024-02-29 12:34:56.123456
    let ymd = ((2024i64 * 13 + 2) << 5) | 29;
    let hms = (12 << 12) | (34 << 6) | 56;
    let packed = ((ymd << 17) | hms) + 0x80_0000_0000;
    let mut b = packed.to_be_bytes()[3..].to_vec();
    b.extend(&123_456u32.to_be_bytes()[1..]);
    let want = days_from_civil(2024, 2, 29) * MICROS_PER_DAY + 45_296_123_456;
    assert_eq!(
        decode(&col(ColType::Datetime2 { fsp: 6 }), &b).unwrap(),
        Value::Timestamp(want)
    );
    // TIMESTAMP(3): seconds big-endian + 2 bytes of tenths of milliseconds.
    let mut b = 1_700_000_000u32.to_be_bytes().to_vec();
    b.extend(1234u16.to_be_bytes());
    assert_eq!(
        decode(&col(ColType::Timestamp2 { fsp: 3 }), &b).unwrap(),
        Value::TimestampTz(1_700_000_000_123_400)
    );
    // Old formats and the zero date.
    let date = (2000u32 << 9) | (1 << 5) | 31;
    assert_eq!(
        decode(&col(ColType::Date), &date.to_le_bytes()[..3]).unwrap(),
        Value::Date(days_from_civil(2000, 1, 31) as i32)
    );
    assert_eq!(
        decode(&col(ColType::Date), &[0, 0, 0]).unwrap(),
        Value::Other {
            type_name: "zero_date".into(),
            text: "0000-00-00".into()
        }
    );
    assert_eq!(
        decode(&col(ColType::Datetime), &20240229123456u64.to_le_bytes()).unwrap(),
        Value::Timestamp(days_from_civil(2024, 2, 29) * MICROS_PER_DAY + 45_296_000_000)
    );
    let neg_time = (-123456i32).to_le_bytes();
    assert_eq!(
        decode(&col(ColType::Time), &neg_time[..3]).unwrap(),
        Value::Time(-(12 * 3600 + 34 * 60 + 56) * 1_000_000)
    );
    assert_eq!(decode(&col(ColType::Year), &[0]).unwrap(), Value::Int(0));
}

#[test]
fn strings_in_their_charsets() {
    let mut c = col(ColType::Varchar { max_len: 40 });
    c.charset = Some(Charset::Latin1);
    assert_eq!(
        decode(&c, &[5, b'c', b'a', b'f', 0xE9, 0x80]).unwrap(),
        Value::Text("café€".into())
    );
    c.charset = Some(Charset::Utf8);
    assert_eq!(
        decode(&c, &[2, 0xC3, 0xA9]).unwrap(),
        Value::Text("é".into())
    );
    assert_eq!(decode(&c, &[1, 0xFF]), Err(DecodeError::BadText));
    c.charset = Some(Charset::Other("gbk".into()));
    assert!(matches!(
        decode(&c, &[1, b'a']),
        Err(DecodeError::UnsupportedCharset(_))
    ));
    let mut bin = col(ColType::Char { max_len: 4 });
    bin.charset = Some(Charset::Binary);
    assert_eq!(
        decode(&bin, &[1, 7]).unwrap(),
        Value::Bytes(vec![7, 0, 0, 0])
    );
    let mut wide = col(ColType::Varchar { max_len: 1200 });
    wide.charset = Some(Charset::Utf8);
    let mut b = 300u16.to_le_bytes().to_vec();
    b.extend(std::iter::repeat_n(b'x', 300));
    assert_eq!(decode(&wide, &b).unwrap(), Value::Text("x".repeat(300)));
}

#[test]
fn string_column_metadata_resolves_real_types() {
    // CHAR(255) in utf8mb4 = 1020 bytes: the high length bits hide, inverted, in the type byte.
    assert_eq!(
        ColType::from_binlog(code::STRING, &[0xCE, 0xFC]).unwrap(),
        ColType::Char { max_len: 1020 }
    );
    assert_eq!(
        ColType::from_binlog(code::STRING, &[code::ENUM, 1]).unwrap(),
        ColType::Enum { pack: 1 }
    );
    assert_eq!(
        ColType::from_binlog(code::STRING, &[code::SET, 2]).unwrap(),
        ColType::Set { pack: 2 }
    );
}

#[test]
fn enum_set_and_bits() {
    let mut e = col(ColType::Enum { pack: 1 });
    e.enum_values = vec!["a".to_string(), "b".to_string()].into();
    assert_eq!(decode(&e, &[2]).unwrap(), Value::Enum("b".into()));
    assert_eq!(decode(&e, &[3]), Err(DecodeError::EnumIndex(3)));
    let mut s = col(ColType::Set { pack: 1 });
    s.set_values = vec!["x".to_string(), "y".to_string(), "z".to_string()].into();
    assert_eq!(
        decode(&s, &[0b101]).unwrap(),
        Value::Set(vec!["x".into(), "z".into()])
    );
    assert_eq!(decode(&s, &[0b1000]), Err(DecodeError::SetBits));
    assert_eq!(
        decode(&col(ColType::Bit { bits: 10 }), &[0b10, 0b1000_0011]).unwrap(),
        Value::Bits {
            len: 10,
            bytes: vec![0b1010_0000, 0b1100_0000]
        }
    );
}

#[test]
fn old_datetimes_out_of_range_are_errors_not_overflows() {
    let dt = |v: u64| decode(&col(ColType::Datetime), &v.to_le_bytes());
    assert_eq!(
        dt(99991231235959).unwrap(),
        Value::Timestamp(days_from_civil(9999, 12, 31) * MICROS_PER_DAY + 86_399_000_000)
    );
    for v in [
        u64::MAX,
        5_181_568_287_614_080,
        100000101000000,
        20240229243456,
    ] {
        assert_eq!(dt(v), Err(DecodeError::Malformed("DATETIME")), "{v}");
    }
}
