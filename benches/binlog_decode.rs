//! Rows-event decoding throughput for a typical 10-column row (ids, money, text, timestamps, flags).
//!
//! Run with `cargo bench --bench binlog_decode`; prints rows per second. No assertions: performance is
//! watched here, never in tests.

use std::hint::black_box;
use std::time::Instant;

use tandem::capture::mysql::decode::{decode_rows, RowsKind};
use tandem::capture::mysql::fixtures::{column_names, lenenc, rows_event, table_map};
use tandem::capture::mysql::metadata::{parse_table_map, resolve, Collations};
use tandem::capture::mysql::types::code;
use tandem::model::Op;

const ROWS_PER_EVENT: usize = 100;
const EVENTS: usize = 2_000;

fn main() {
    let columns = vec![
        (code::LONGLONG, vec![]),                        // id
        (code::LONG, vec![]),                            // customer_id
        (code::VARCHAR, 200u16.to_le_bytes().to_vec()),  // name
        (code::VARCHAR, 1020u16.to_le_bytes().to_vec()), // email (utf8mb4)
        (code::NEWDECIMAL, vec![12, 2]),                 // amount
        (code::DATETIME2, vec![6]),                      // created_at
        (code::TIMESTAMP2, vec![0]),                     // updated_at
        (code::TINY, vec![]),                            // active
        (code::DOUBLE, vec![8]),                         // score
        (code::BLOB, vec![2]),                           // notes
    ];
    let names = [
        "id",
        "customer_id",
        "name",
        "email",
        "amount",
        "created_at",
        "updated_at",
        "active",
        "score",
        "notes",
    ];
    let optional = vec![
        (1u8, vec![0u8; 2]),
        (2, lenenc(45)),
        (4, column_names(&names)),
        (8, lenenc(0)),
    ];
    let map = table_map(7, "shop", "orders", &columns, &optional);
    let meta = resolve(
        &parse_table_map(&map).expect("table map"),
        None,
        &Collations::default(),
    )
    .expect("metadata");

    let mut row = vec![0u8, 0];
    row.extend(123_456_789u64.to_le_bytes());
    row.extend(42u32.to_le_bytes());
    row.push(11);
    row.extend(b"Ada Lovelac");
    let email = b"ada@example.com";
    row.extend((email.len() as u16).to_le_bytes());
    row.extend(email);
    row.extend([0x80, 0, 0, 0x30, 0x39, 0x2A]); // DECIMAL(12,2) 12345.42
    row.extend([0x99, 0xB2, 0x7A, 0x8C, 0x38, 0x01, 0xE2, 0x40]); // DATETIME(6)
    row.extend(1_700_000_000u32.to_be_bytes());
    row.push(1);
    row.extend(0.75f64.to_le_bytes());
    let notes = b"call back after the 3rd";
    row.extend((notes.len() as u16).to_le_bytes());
    row.extend(notes);

    let rows: Vec<Vec<u8>> = (0..ROWS_PER_EVENT).map(|_| row.clone()).collect();
    let body = rows_event(7, true, false, columns.len(), &rows);
    let kind = RowsKind {
        op: Op::Insert,
        v2: true,
    };
    let check = decode_rows(kind, &body, &meta).expect("benchmark event decodes");
    assert_eq!(check.len(), ROWS_PER_EVENT);

    let start = Instant::now();
    let mut total = 0usize;
    for _ in 0..EVENTS {
        let changes = decode_rows(kind, black_box(&body), &meta).expect("decodes");
        total += black_box(changes).len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "binlog_decode: {total} rows of 10 columns in {secs:.3}s = {:.0} rows/s",
        total as f64 / secs
    );
}
