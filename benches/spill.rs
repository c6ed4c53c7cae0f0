//! Spill throughput: a transaction over the memory budget written to its spill file and read back,
//! for a typical 10-column row (int, bigint, text, varchar, numeric, timestamptz, bool, float,
//! uuid, json), in the spill file's format (length-prefixed `postcard` frames) and, side by side in
//! the same run, in the JSON lines format it had before, with the same buffered file I/O.
//! Prints rows per second for write + read and the file's bytes per row.
//!
//! Run: `cargo bench --bench spill` (`TANDEM_BENCH_ROWS`, default 200,000).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

use tandem::model::spill::SpillBuffer;
use tandem::model::{Change, ChangeSet, Field, ImageKind, Op, RowImage, TableRef, Value};

fn row(i: i64) -> Change {
    let f = |name: &str, value| Field {
        name: name.into(),
        value,
    };
    Change {
        table: TableRef::new("public", "bench"),
        op: Op::Insert,
        before: None,
        after: Some(RowImage::new(
            ImageKind::Full,
            vec![
                f("id", Value::Int(i)),
                f("n", Value::Int(i * 7)),
                f("name", Value::Text(format!("customer {i}"))),
                f("email", Value::Text(format!("c{i}@example.com"))),
                f(
                    "amount",
                    Value::Decimal("12345.67".parse().expect("decimal")),
                ),
                f("at", Value::TimestampTz(1_700_000_000_000_000 + i)),
                f("active", Value::Bool(i % 2 == 0)),
                f("score", Value::Float64(i as f64 / 3.0)),
                f("ref", Value::Uuid([7; 16])),
                f("doc", Value::Json(format!("{{\"k\": {i}}}"))),
            ],
        )),
    }
}

fn main() {
    let rows: i64 = std::env::var("TANDEM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("tandem-bench-spill-{}", std::process::id()));
    println!("spill: {rows} rows of 10 columns, written past a zero budget and read back");

    // Making the rows alone, which both timings below include.
    let start = Instant::now();
    for i in 0..rows {
        std::hint::black_box(row(i));
    }
    let making = start.elapsed();

    // The spill file as tandem writes it.
    let start = Instant::now();
    let mut buffer = SpillBuffer::new(&dir, 0);
    for i in 0..rows {
        buffer.push(row(i)).expect("spill write");
    }
    let set = buffer.finish().expect("spill finish");
    let bytes = match &set {
        ChangeSet::Spilled(s) => std::fs::metadata(s.path()).map_or(0, |m| m.len()),
        ChangeSet::Memory(_) => 0,
    };
    let mut read = 0;
    for c in set.iter() {
        c.expect("spill read");
        read += 1;
    }
    let binary = start.elapsed();
    assert_eq!(read, rows);
    drop(set);

    // The same rows as JSON lines (the format before the seventh session).
    let path = dir.join("bench-json-lines");
    let start = Instant::now();
    let mut w = BufWriter::with_capacity(1 << 16, std::fs::File::create(&path).expect("json file"));
    for i in 0..rows {
        serde_json::to_writer(&mut w, &row(i)).expect("json write");
        w.write_all(b"\n").expect("json write");
    }
    w.flush().expect("json flush");
    drop(w);
    let json_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let r = BufReader::with_capacity(1 << 16, std::fs::File::open(&path).expect("json open"));
    let mut json_read = 0;
    for line in r.lines() {
        let c: Change = serde_json::from_str(&line.expect("json line")).expect("json change");
        std::hint::black_box(c);
        json_read += 1;
    }
    let json = start.elapsed();
    assert_eq!(json_read, rows);
    let _ = std::fs::remove_file(&path);

    // The spill's own time: what the run took beyond making the rows.
    let binary = binary.saturating_sub(making);
    let json = json.saturating_sub(making);
    let rate = |d: std::time::Duration| rows as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "making the rows: {:.3} s (subtracted from both)",
        making.as_secs_f64()
    );
    println!(
        "postcard frames: {:>9.0} rows/s write+read ({:.3} s), {:>4} bytes/row",
        rate(binary),
        binary.as_secs_f64(),
        bytes / rows as u64
    );
    println!(
        "JSON lines:      {:>9.0} rows/s write+read ({:.3} s), {:>4} bytes/row",
        rate(json),
        json.as_secs_f64(),
        json_bytes / rows as u64
    );
    println!(
        "ratio: {:.2}x the rate, {:.2}x the bytes",
        json.as_secs_f64() / binary.as_secs_f64().max(1e-9),
        bytes as f64 / json_bytes.max(1) as f64
    );
}
