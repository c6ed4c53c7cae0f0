//! Decoding throughput of the PostgreSQL capture for a typical 10-column row (int4, int8, text,
//! varchar, numeric, timestamptz, bool, float8, uuid, jsonb), from bytes a PostgreSQL 15 walsender
//! produced. Prints rows per second for the pgoutput decoder alone and for decoder plus transaction
//! assembly (value parsing into the model, one single-row transaction per iteration).
//!
//! Run: `cargo bench --bench pgoutput_decode`.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use tandem::capture::postgres::assemble::Assembler;
use tandem::capture::postgres::decode::decode;
use tandem::model::Lsn;

const ROWS: u64 = 200_000;

fn captured() -> Vec<Bytes> {
    include_str!("../src/capture/postgres/testdata/pg15_insert.hex")
        .lines()
        .map(|l| {
            let b = l.trim().as_bytes();
            let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            Bytes::from(
                b.chunks(2)
                    .map(|p| (digit(p[0]) << 4) | digit(p[1]))
                    .collect::<Vec<u8>>(),
            )
        })
        .collect()
}

/// A copy of `msg` with the big-endian u64 at `at` replaced, to give each transaction its own LSNs.
fn with_u64(msg: &Bytes, at: usize, v: u64) -> Bytes {
    let mut m = msg.to_vec();
    m[at..at + 8].copy_from_slice(&v.to_be_bytes());
    m.into()
}

fn main() {
    let msgs = captured();
    let (begin, relation, insert, commit) = (&msgs[0], &msgs[1], &msgs[2], &msgs[3]);

    let start = Instant::now();
    for _ in 0..ROWS {
        black_box(decode(black_box(insert), false).expect("decodes"));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "pgoutput decode only:          {:>12.0} rows/s ({ROWS} rows in {secs:.3} s)",
        ROWS as f64 / secs
    );

    let mut asm = Assembler::new(
        "bench".into(),
        64 << 20,
        std::env::temp_dir().join("tandem-bench"),
        Lsn(0),
    );
    asm.handle(decode(relation, false).expect("relation"))
        .expect("relation accepted");
    // Pre-build the per-transaction framing so the loop measures decoding, not byte patching.
    let frames: Vec<(Bytes, Bytes)> = (0..1000u64)
        .map(|i| {
            let lsn = 0x1000_0000 + i * 0x100;
            (
                with_u64(begin, 1, lsn),
                with_u64(&with_u64(commit, 2, lsn), 10, lsn + 0x30),
            )
        })
        .collect();
    let start = Instant::now();
    let mut delivered = 0u64;
    for round in 0..ROWS / 1000 {
        // Past the first round the LSNs repeat; a fresh assembler keeps the replay filter out of it.
        if round > 0 {
            asm = Assembler::new(
                "bench".into(),
                64 << 20,
                std::env::temp_dir().join("tandem-bench"),
                Lsn(0),
            );
            asm.handle(decode(relation, false).expect("relation"))
                .expect("relation accepted");
        }
        for (b, c) in &frames {
            asm.handle(decode(b, false).expect("begin")).expect("begin");
            asm.handle(decode(insert, false).expect("insert"))
                .expect("insert");
            if black_box(
                asm.handle(decode(c, false).expect("commit"))
                    .expect("commit"),
            )
            .is_some()
            {
                delivered += 1;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(delivered, ROWS, "every transaction must come out");
    println!(
        "decode + assemble into model:  {:>12.0} rows/s ({ROWS} rows in {secs:.3} s)",
        ROWS as f64 / secs
    );
}
