//! Value decoding tests: every supported type's text forms, including the edge values.

use super::*;
use crate::capture::postgres::array::parse_array;
use crate::model::time::days_from_civil;

fn d(oid: u32, s: &str) -> Value {
    TypeRegistry::default()
        .decode_text(oid, s)
        .unwrap_or_else(|e| panic!("{s:?} as oid {oid}: {e}"))
}

fn bad(oid: u32, s: &str) {
    assert!(
        TypeRegistry::default().decode_text(oid, s).is_err(),
        "{s:?} as oid {oid} should be refused"
    );
}

#[test]
fn scalars() {
    assert_eq!(d(oid::BOOL, "t"), Value::Bool(true));
    assert_eq!(d(oid::INT2, "-32768"), Value::Int(-32768));
    assert_eq!(d(oid::INT8, "9223372036854775807"), Value::Int(i64::MAX));
    assert_eq!(d(oid::FLOAT8, "NaN"), Value::Float64(f64::NAN));
    assert_eq!(
        d(oid::FLOAT8, "-Infinity"),
        Value::Float64(f64::NEG_INFINITY)
    );
    assert_eq!(d(oid::FLOAT8, "0.1"), Value::Float64(0.1));
    assert_eq!(d(oid::FLOAT8, "-0"), Value::Float64(-0.0));
    assert_eq!(d(oid::FLOAT4, "3.4028235e+38"), Value::Float32(f32::MAX));
    assert_eq!(d(oid::FLOAT4, "0.1"), Value::Float32(0.1));
    assert_eq!(
        d(oid::NUMERIC, "NaN"),
        Value::Decimal("NaN".parse().unwrap())
    );
    let big = format!("-{}.{}", "9".repeat(120), "0".repeat(30));
    match d(oid::NUMERIC, &big) {
        Value::Decimal(x) => assert_eq!(x.as_str(), big),
        other => panic!("{other:?}"),
    }
    assert_eq!(d(oid::TEXT, "héllo\n"), Value::Text("héllo\n".into()));
    assert_eq!(d(oid::BPCHAR, "ab  "), Value::Text("ab  ".into()));
    assert_eq!(
        d(oid::JSONB, "{\"a\": 1}"),
        Value::Json("{\"a\": 1}".into())
    );
    assert_eq!(d(oid::BYTEA, "\\x00ff10"), Value::Bytes(vec![0, 255, 16]));
    assert_eq!(d(oid::BYTEA, "\\x"), Value::Bytes(vec![]));
    assert_eq!(
        d(oid::UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        Value::Uuid([
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11
        ])
    );
    assert_eq!(
        d(oid::VARBIT, "10100"),
        Value::Bits {
            len: 5,
            bytes: vec![0b1010_0000]
        }
    );
    bad(oid::BOOL, "true");
    bad(oid::INT4, "1.5");
    bad(oid::FLOAT8, "inf");
    bad(oid::BYTEA, "\\x0");
    bad(oid::UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1");
    bad(oid::UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1-");
}

#[test]
fn times() {
    assert_eq!(
        d(oid::DATE, "2024-02-29"),
        Value::Date(days_from_civil(2024, 2, 29) as i32)
    );
    assert_eq!(d(oid::DATE, "infinity"), Value::Date(i32::MAX));
    assert_eq!(d(oid::DATE, "-infinity"), Value::Date(i32::MIN));
    // 44 BC is astronomical year -43.
    assert_eq!(
        d(oid::DATE, "0044-03-15 BC"),
        Value::Date(days_from_civil(-43, 3, 15) as i32)
    );
    assert_eq!(d(oid::TIME, "23:59:59.999999"), Value::Time(86_399_999_999));
    assert_eq!(d(oid::TIME, "24:00:00"), Value::Time(86_400_000_000));
    assert_eq!(
        d(oid::TIMETZ, "12:00:00.5+05:30"),
        Value::TimeTz {
            micros: 43_200_500_000,
            offset_secs: 19_800
        }
    );
    assert_eq!(
        d(oid::TIMETZ, "01:02:03-08"),
        Value::TimeTz {
            micros: 3_723_000_000,
            offset_secs: -28_800
        }
    );
    assert_eq!(
        d(oid::TIMESTAMP, "1970-01-01 00:00:00.000001"),
        Value::Timestamp(1)
    );
    assert_eq!(d(oid::TIMESTAMP, "infinity"), Value::Timestamp(i64::MAX));
    assert_eq!(
        d(oid::TIMESTAMPTZ, "-infinity"),
        Value::TimestampTz(i64::MIN)
    );
    assert_eq!(
        d(oid::TIMESTAMPTZ, "2000-01-01 00:00:00+00"),
        Value::TimestampTz(946_684_800_000_000)
    );
    assert_eq!(
        d(oid::TIMESTAMPTZ, "2000-01-01 01:00:00+01"),
        Value::TimestampTz(946_684_800_000_000)
    );
    assert_eq!(
        d(oid::TIMESTAMPTZ, "4713-11-24 00:00:00+00 BC"),
        Value::TimestampTz(days_from_civil(-4712, 11, 24) * 86_400_000_000)
    );
    assert_eq!(
        d(oid::TIMESTAMP, "200000-12-31 23:59:59.999999"),
        Value::Timestamp(days_from_civil(200_000, 12, 31) * 86_400_000_000 + 86_399_999_999)
    );
    // PostgreSQL counts from 2000, the model from 1970: the last ~30 years of PostgreSQL's range
    // (after 294247) do not fit in the model's i64 and are refused rather than wrapped.
    bad(oid::TIMESTAMP, "294276-12-31 23:59:59.999999");
    bad(oid::TIMESTAMPTZ, "2024-01-01T00:00:00Z");
    bad(oid::DATE, "2023-02-29");
}

#[test]
fn intervals_in_iso_8601() {
    let iv = |months, days, micros| Value::Interval {
        months,
        days,
        micros,
    };
    assert_eq!(d(oid::INTERVAL, "PT0S"), iv(0, 0, 0));
    assert_eq!(
        d(oid::INTERVAL, "P1Y2M3DT4H5M6.789S"),
        iv(14, 3, 14_706_789_000)
    );
    assert_eq!(
        d(oid::INTERVAL, "P-1Y-2M3DT-4H-5M-6.5S"),
        iv(-14, 3, -14_706_500_000)
    );
    assert_eq!(d(oid::INTERVAL, "PT-0.000001S"), iv(0, 0, -1));
    assert_eq!(d(oid::INTERVAL, "P178956970Y7M"), iv(i32::MAX, 0, 0));
    bad(oid::INTERVAL, "1 day");
    bad(oid::INTERVAL, "P1X");
    bad(oid::INTERVAL, "PT1.1234567S");
}

fn registry() -> TypeRegistry {
    let mut r = TypeRegistry::default();
    r.insert(
        90001,
        TypeInfo {
            name: "mood".into(),
            kind: TypeKind::Enum,
        },
    );
    r.insert(
        90002,
        TypeInfo {
            name: "_mood".into(),
            kind: TypeKind::Array {
                elem: 90001,
                delim: b',',
            },
        },
    );
    r.insert(
        90003,
        TypeInfo {
            name: "posint".into(),
            kind: TypeKind::Domain { base: oid::INT4 },
        },
    );
    r.insert(
        90004,
        TypeInfo {
            name: "_posint".into(),
            kind: TypeKind::Array {
                elem: 90003,
                delim: b',',
            },
        },
    );
    r.insert(
        1009,
        TypeInfo {
            name: "_text".into(),
            kind: TypeKind::Array {
                elem: oid::TEXT,
                delim: b',',
            },
        },
    );
    r.insert(
        1007,
        TypeInfo {
            name: "_int4".into(),
            kind: TypeKind::Array {
                elem: oid::INT4,
                delim: b',',
            },
        },
    );
    r.insert(
        90005,
        TypeInfo {
            name: "inet".into(),
            kind: TypeKind::Other,
        },
    );
    r
}

#[test]
fn enums_domains_arrays_and_unknown_types() {
    let r = registry();
    assert_eq!(
        r.decode_text(90001, "happy").unwrap(),
        Value::Enum("happy".into())
    );
    assert_eq!(r.decode_text(90003, "42").unwrap(), Value::Int(42));
    assert_eq!(
        r.decode_text(90002, "{happy,NULL,\"sad one\"}").unwrap(),
        Value::Array(vec![
            Value::Enum("happy".into()),
            Value::Null,
            Value::Enum("sad one".into())
        ])
    );
    assert_eq!(
        r.decode_text(1009, r#"{"NULL",NULL,"a\"b","c\\d","{x}",""}"#)
            .unwrap(),
        Value::Array(vec![
            Value::Text("NULL".into()),
            Value::Null,
            Value::Text("a\"b".into()),
            Value::Text("c\\d".into()),
            Value::Text("{x}".into()),
            Value::Text(String::new()),
        ])
    );
    assert_eq!(
        r.decode_text(1007, "{{1,2},{3,4}}").unwrap(),
        Value::Array(vec![
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
            Value::Array(vec![Value::Int(3), Value::Int(4)]),
        ])
    );
    assert_eq!(
        r.decode_text(1007, "[0:1]={7,8}").unwrap(),
        Value::Array(vec![Value::Int(7), Value::Int(8)])
    );
    assert_eq!(r.decode_text(1007, "{}").unwrap(), Value::Array(vec![]));
    assert_eq!(
        r.decode_text(90004, "{1}").unwrap(),
        Value::Array(vec![Value::Int(1)])
    );
    assert_eq!(
        r.decode_text(90005, "10.0.0.1/8").unwrap(),
        Value::Other {
            type_name: "inet".into(),
            text: "10.0.0.1/8".into()
        }
    );
    assert_eq!(
        r.decode_text(424242, "(1,2)").unwrap(),
        Value::Other {
            type_name: "oid 424242".into(),
            text: "(1,2)".into()
        }
    );
    assert!(r.decode_text(1007, "{1,x}").is_err());
    assert!(r.decode_text(1007, "{1,2").is_err());
    assert!(r.decode_text(1007, "{1,2}}").is_err());
    assert_eq!(r.missing(90004), None);
    assert_eq!(TypeRegistry::default().missing(1007), Some(1007));
    assert_eq!(TypeRegistry::default().missing(oid::INT4), None);
}

proptest::proptest! {
    #[test]
    fn array_parser_never_panics(s in "[{}\",\\\\a-c NUL\\[\\]:=0-9]{0,40}") {
        let _ = parse_array(&s, b',');
        let _ = registry().decode_text(1009, &s);
    }

    #[test]
    fn text_arrays_round_trip(items in proptest::collection::vec(proptest::option::of("[ -~é]{0,8}"), 0..6)) {
        let lit: Vec<String> = items.iter().map(|i| match i {
            None => "NULL".to_string(),
            Some(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        }).collect();
        let text = format!("{{{}}}", lit.join(","));
        let want = Value::Array(items.iter().map(|i| match i {
            None => Value::Null,
            Some(s) => Value::Text(s.clone()),
        }).collect());
        proptest::prop_assert_eq!(registry().decode_text(1009, &text).unwrap(), want);
    }

    #[test]
    fn scalar_parsers_never_panic(s in "\\PC{0,30}", oid in proptest::sample::select(vec![16u32, 20, 700, 701, 1082, 1083, 1114, 1184, 1186, 1266, 1560, 1700, 2950, 17])) {
        let _ = TypeRegistry::default().decode_text(oid, &s);
    }
}
