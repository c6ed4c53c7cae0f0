use super::*;
use crate::capture::mysql::fixtures::rows_event;
use crate::capture::mysql::metadata::tests::sample_map;
use crate::capture::mysql::metadata::{parse_table_map, resolve, Collations};
use crate::model::Decimal;
use proptest::prelude::*;

fn table() -> TableMeta {
    let map = parse_table_map(&sample_map(true)).unwrap();
    resolve(&map, None, &Collations::default()).unwrap()
}

/// id=7, name='café' (latin1), kind='b', price=-3.50, note=NULL
fn row() -> Vec<u8> {
    let mut r = vec![0b0001_0000];
    r.extend(7u32.to_le_bytes());
    r.extend([4, b'c', b'a', b'f', 0xE9]);
    r.push(2);
    // DECIMAL(10,2) -3.50: 8 integer digits (4 bytes) + 2 fraction digits (1 byte), inverted.
    let pos: [u8; 5] = [0x80, 0, 0, 3, 50];
    r.extend(pos.iter().map(|b| !b));
    r
}

#[test]
fn decodes_v1_and_v2_rows_events_alike() {
    let t = table();
    for v2 in [false, true] {
        let body = rows_event(42, v2, false, 5, &[row(), row()]);
        let kind = RowsKind { op: Op::Insert, v2 };
        let changes = decode_rows(kind, &body, &t).unwrap();
        assert_eq!(changes.len(), 2);
        let after = changes[0].after.as_ref().unwrap();
        assert_eq!(after.kind, ImageKind::Full);
        assert_eq!(after.get("id"), Some(&Value::UInt(7)));
        assert_eq!(after.get("name"), Some(&Value::Text("café".into())));
        assert_eq!(after.get("kind"), Some(&Value::Enum("b".into())));
        assert_eq!(
            after.get("price"),
            Some(&Value::Decimal("-3.50".parse::<Decimal>().unwrap()))
        );
        assert_eq!(after.get("note"), Some(&Value::Null));
    }
}

#[test]
fn updates_carry_before_and_after() {
    let body = rows_event(42, true, true, 5, &[row(), row()]);
    let changes = decode_rows(
        RowsKind {
            op: Op::Update,
            v2: true,
        },
        &body,
        &table(),
    )
    .unwrap();
    assert_eq!(changes.len(), 1);
    assert!(changes[0].before.is_some() && changes[0].after.is_some());
}

#[test]
fn truncated_rows_are_errors() {
    let body = rows_event(42, true, false, 5, &[row()]);
    for cut in 1..body.len() {
        let r = decode_rows(
            RowsKind {
                op: Op::Insert,
                v2: true,
            },
            &body[..cut],
            &table(),
        );
        if cut > 14 {
            assert!(r.is_err(), "cut at {cut} decoded");
        }
    }
}

#[test]
fn zero_column_events_are_rejected_not_looped_on() {
    let mut body = rows_event(42, true, false, 5, &[row()]);
    body[10] = 0; // column count
    let r = decode_rows(
        RowsKind {
            op: Op::Insert,
            v2: true,
        },
        &body,
        &table(),
    );
    assert_eq!(r, Err(DecodeError::Malformed("rows event without columns")));
    let mut body = rows_event(42, true, false, 5, &[row()]);
    body[11] = 0; // present bitmap: no column
    let r = decode_rows(
        RowsKind {
            op: Op::Insert,
            v2: true,
        },
        &body,
        &table(),
    );
    assert!(
        r.is_err(),
        "an empty present bitmap with data left must not loop"
    );
}

proptest! {
    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..100), v2 in any::<bool>(), t in 0u8..3) {
        let op = [Op::Insert, Op::Update, Op::Delete][usize::from(t)];
        let _ = decode_rows(RowsKind { op, v2 }, &data, &table());
    }

    #[test]
    fn mutated_events_never_panic(idx in 0usize..64, byte in any::<u8>()) {
        let mut body = rows_event(42, true, false, 5, &[row()]);
        let i = idx % body.len();
        body[i] = byte;
        let _ = decode_rows(RowsKind { op: Op::Insert, v2: true }, &body, &table());
    }
}

/// What the `binlog_rows` fuzz target does with its input: `map_len:u16le map rows_type rows`.
fn decode_fuzz_input(data: &[u8]) -> Result<Vec<Change>, DecodeError> {
    use crate::capture::mysql::metadata::{InfoColumn, SchemaInfo};
    let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let (map_body, rest) = data[2..].split_at(len);
    let map = parse_table_map(map_body)?;
    let info = SchemaInfo {
        columns: (0..map.columns.len())
            .map(|i| InfoColumn {
                name: format!("c{i}"),
                ..InfoColumn::default()
            })
            .collect(),
    };
    let table = resolve(&map, Some(&info), &Collations::default()).unwrap();
    let code = [23, 24, 25, 30, 31, 32][usize::from(rest[0] % 6)];
    decode_rows(RowsKind::from_event_type(code).unwrap(), &rest[1..], &table)
}

/// Found by `fuzz/` (binlog_rows): an old-format DATETIME of year 518,156 overflowed the
/// microsecond count (a panic in debug builds, a wrong timestamp in release).
#[test]
fn fuzz_crash_old_datetime_with_a_far_year_is_an_error() {
    let input = hex(CRASH_OLD_DATETIME);
    assert!(matches!(
        decode_fuzz_input(&input),
        Err(DecodeError::Malformed("DATETIME"))
    ));
}

const CRASH_OLD_DATETIME: &str = "22006f00000000006101030070700001740002080c00ff01018004050269640176080100006f020b000000011002ff000b0000000227080c00ff01018004fc000000000000080000000000000000000000000000000000000500000080a429e19b68120000020b00000000000000";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
