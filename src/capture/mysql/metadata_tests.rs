use super::*;
use crate::capture::mysql::fixtures::{column_names, lenenc, table_map};
use crate::capture::mysql::types::code;
use proptest::prelude::*;

/// (id INT UNSIGNED, name VARCHAR(20) latin1, kind ENUM('a','b'), price DECIMAL(10,2), note TEXT utf8mb4)
pub(crate) fn sample_map(with_optional: bool) -> Vec<u8> {
    let columns = vec![
        (code::LONG, vec![]),
        (code::VARCHAR, 20u16.to_le_bytes().to_vec()),
        (code::STRING, vec![code::ENUM, 1]),
        (code::NEWDECIMAL, vec![10, 2]),
        (code::BLOB, vec![2]),
    ];
    let mut optional = Vec::new();
    if with_optional {
        optional.push((1, vec![0b1000_0000])); // signedness: id unsigned, price signed
                                               // default charset utf8mb4_general_ci (45) with column 0 of the character columns latin1 (8)
        optional.push((2, [lenenc(45), lenenc(0), lenenc(8)].concat()));
        optional.push((4, column_names(&["id", "name", "kind", "price", "note"])));
        optional.push((
            6,
            [
                lenenc(2),
                lenenc(1),
                b"a".to_vec(),
                lenenc(1),
                b"b".to_vec(),
            ]
            .concat(),
        ));
        optional.push((8, lenenc(0)));
    }
    table_map(42, "shop", "item", &columns, &optional)
}

#[test]
fn parses_a_full_metadata_table_map() {
    let map = parse_table_map(&sample_map(true)).unwrap();
    assert_eq!(map.table_id, 42);
    assert_eq!(map.table, TableRef::new("shop", "item"));
    let meta = resolve(&map, None, &Collations::default()).unwrap();
    let names: Vec<&str> = meta.columns.iter().map(|c| &*c.name).collect();
    assert_eq!(names, ["id", "name", "kind", "price", "note"]);
    assert!(meta.columns[0].decoder.unsigned);
    assert!(!meta.columns[3].decoder.unsigned);
    assert_eq!(meta.columns[1].decoder.charset, Some(Charset::Latin1));
    assert_eq!(meta.columns[4].decoder.charset, Some(Charset::Utf8));
    assert_eq!(&*meta.columns[2].decoder.enum_values, ["a", "b"]);
    assert_eq!(meta.primary_key, vec![0]);
}

#[test]
fn minimal_metadata_falls_back_to_information_schema() {
    let map = parse_table_map(&sample_map(false)).unwrap();
    assert!(matches!(
        resolve(&map, None, &Collations::default()),
        Err(MetadataError::NoNames { .. })
    ));
    let info = SchemaInfo {
        columns: vec![
            InfoColumn {
                name: "id".into(),
                unsigned: true,
                primary_key: true,
                ..Default::default()
            },
            InfoColumn {
                name: "name".into(),
                charset: Some("latin1".into()),
                ..Default::default()
            },
            InfoColumn {
                name: "kind".into(),
                enum_values: vec!["a".into(), "b".into()],
                ..Default::default()
            },
            InfoColumn {
                name: "price".into(),
                ..Default::default()
            },
            InfoColumn {
                name: "note".into(),
                charset: Some("utf8mb4".into()),
                is_json: true,
                ..Default::default()
            },
        ],
    };
    let meta = resolve(&map, Some(&info), &Collations::default()).unwrap();
    assert_eq!(&*meta.columns[4].name, "note");
    assert!(meta.columns[0].decoder.unsigned);
    assert_eq!(meta.columns[1].decoder.charset, Some(Charset::Latin1));
    assert!(meta.columns[4].decoder.json_text);
    assert_eq!(meta.primary_key, vec![0]);
    let mut short = info.clone();
    short.columns.pop();
    assert!(matches!(
        resolve(&map, Some(&short), &Collations::default()),
        Err(MetadataError::ColumnCountMismatch {
            binlog: 5,
            schema: 4,
            ..
        })
    ));
}

#[test]
fn cache_notices_changed_table_maps_and_ddl() {
    let body = sample_map(true);
    let map = parse_table_map(&body).unwrap();
    let meta = Arc::new(resolve(&map, None, &Collations::default()).unwrap());
    let mut cache = MetadataCache::default();
    cache.insert(42, &body, Some(meta));
    assert!(cache.is_current(42, &body));
    let mut altered = body.clone();
    altered.push(0);
    assert!(!cache.is_current(42, &altered));
    cache.set_schema_info(map.table.clone(), SchemaInfo::default());
    cache.invalidate(&map.table);
    assert!(cache.get(42).is_none());
    assert!(cache.schema_info(&map.table).is_none());
}

proptest! {
    #[test]
    fn parsing_never_panics(data in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(map) = parse_table_map(&data) {
            let _ = resolve(&map, None, &Collations::default());
        }
    }

    #[test]
    fn mutated_table_maps_never_panic(idx in 0usize..200, byte in any::<u8>()) {
        let mut d = sample_map(true);
        let i = idx % d.len();
        d[i] = byte;
        if let Ok(map) = parse_table_map(&d) {
            let _ = resolve(&map, None, &Collations::default());
        }
    }
}

#[test]
fn enum_labels_decode_in_their_charset_and_dropped_tables_need_names() {
    let body = table_map(
        9,
        "shop",
        "t",
        &[(code::STRING, vec![code::ENUM, 1])],
        &[
            (4, column_names(&["e"])),
            (6, [lenenc(1), lenenc(1), vec![0xE9]].concat()),
            (10, lenenc(8)),
        ],
    );
    let meta = resolve(
        &parse_table_map(&body).unwrap(),
        None,
        &Collations::default(),
    )
    .unwrap();
    assert_eq!(&*meta.columns[0].decoder.enum_values, ["é"]);

    let minimal = table_map(9, "shop", "t", &[(code::LONG, vec![])], &[]);
    let map = parse_table_map(&minimal).unwrap();
    assert!(matches!(
        resolve(&map, Some(&SchemaInfo::default()), &Collations::default()),
        Err(MetadataError::NoNames { .. })
    ));
}

/// (id INT, g GEOMETRY, name VARCHAR(20) utf8mb4, p POINT, note TEXT latin1) as MariaDB writes it:
/// the charset metadata counts both geometry columns among the character columns (default
/// `binary`, exceptions at character columns 1 and 3).
#[test]
fn mariadb_counts_geometry_columns_in_the_charset_metadata() {
    let columns = vec![
        (code::LONG, vec![]),
        (code::GEOMETRY, vec![4]),
        (code::VARCHAR, 80u16.to_le_bytes().to_vec()),
        (code::GEOMETRY, vec![4]),
        (code::BLOB, vec![2]),
    ];
    let optional = vec![
        (
            2,
            [lenenc(63), lenenc(1), lenenc(45), lenenc(3), lenenc(8)].concat(),
        ),
        (4, column_names(&["id", "g", "name", "p", "note"])),
    ];
    let body = table_map(7, "app", "geo", &columns, &optional);
    assert!(
        parse_table_map(&body).is_err(),
        "MySQL's counting sees an exception past its character columns"
    );
    let map = parse_table_map_from(&body, true).unwrap();
    let meta = resolve(&map, None, &Collations::default()).unwrap();
    assert_eq!(meta.columns[2].decoder.charset, Some(Charset::Utf8));
    assert_eq!(meta.columns[4].decoder.charset, Some(Charset::Latin1));
    let server = [0xe6, 0x10, 0, 0, 1, 1, 0, 0, 0];
    let mut row = vec![server.len() as u8, 0, 0, 0];
    row.extend(server);
    let mut r = Reader::new(&row);
    assert_eq!(
        crate::capture::mysql::types::decode_value(&meta.columns[1].decoder, &mut r),
        Ok(crate::model::Value::Geometry {
            srid: 4326,
            wkb: vec![1, 1, 0, 0, 0]
        }),
        "a geometry value is the server's SRID (4 bytes, little-endian), then WKB"
    );
}
