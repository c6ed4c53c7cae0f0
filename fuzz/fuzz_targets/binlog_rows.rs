//! TABLE_MAP + rows event -> metadata resolution -> row decoding (every column type's decoder).
//!
//! Input: `table_map_len:u16le table_map_body rows_type:u8 rows_body`. A TABLE_MAP without column
//! names gets generated ones, as information_schema would supply them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::capture::mysql::decode::{decode_rows, RowsKind};
use tandem::capture::mysql::metadata::{
    parse_table_map, resolve, Collations, InfoColumn, SchemaInfo,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let end = (2 + len).min(data.len());
    let (map_body, rest) = (&data[2..end], &data[end..]);
    let Ok(map) = parse_table_map(map_body) else {
        return;
    };
    let info = SchemaInfo {
        columns: (0..map.columns.len())
            .map(|i| InfoColumn {
                name: format!("c{i}"),
                ..InfoColumn::default()
            })
            .collect(),
    };
    let Ok(table) = resolve(&map, Some(&info), &Collations::default()) else {
        return;
    };
    let Some((&rows_type, rows_body)) = rest.split_first() else {
        return;
    };
    // Any byte picks one of the six rows event kinds, so the fuzzer need not find the codes.
    let code = [23, 24, 25, 30, 31, 32][usize::from(rows_type % 6)];
    let kind = RowsKind::from_event_type(code).expect("a rows event code");
    let _ = decode_rows(kind, rows_body, &table);
});
