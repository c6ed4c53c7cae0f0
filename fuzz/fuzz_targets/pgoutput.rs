//! pgoutput messages -> decoder -> assembler (which decodes tuple text by type OID).
//!
//! Input: a sequence of messages, each a little-endian `u16` length and that many bytes (a short
//! last frame takes what is left). Each message is decoded with the stream state the assembler
//! reports, and what decodes is fed on, so Relation/Type messages shape the later rows.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tandem::capture::postgres::assemble::Assembler;
use tandem::capture::postgres::decode::decode;
use tandem::capture::postgres::types::{TypeInfo, TypeKind};
use tandem::model::{ChangeSet, Lsn};

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join("tandem-fuzz-pgoutput");
    let mut asm = Assembler::new("fuzz".into(), 1 << 20, dir, Lsn(0));
    // A link's reader leaves out tandem's own transactions; `tandem tail` does not: both, by the
    // input's length.
    asm.drop_applied(data.len() % 2 == 1);
    // Catalog types the stream would have looked up: an enum, a domain over int4, arrays of both
    // (one with `;` as delimiter, like `box`), and a domain over an array.
    for (oid, kind) in [
        (90001, TypeKind::Enum),
        (90002, TypeKind::Domain { base: 23 }),
        (
            90003,
            TypeKind::Array {
                elem: 90002,
                delim: b',',
            },
        ),
        (
            90004,
            TypeKind::Array {
                elem: 90001,
                delim: b';',
            },
        ),
        (90005, TypeKind::Domain { base: 90003 }),
    ] {
        let name = format!("t{oid}");
        asm.types_mut().insert(oid, TypeInfo { name, kind });
    }
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let end = (2 + len).min(rest.len());
        let msg = Bytes::copy_from_slice(&rest[2..end]);
        rest = &rest[end..];
        let Ok(m) = decode(&msg, asm.in_stream()) else {
            continue;
        };
        if let Ok(Some(tandem::capture::CaptureEvent::Transaction(txn))) = asm.handle(m) {
            if let ChangeSet::Spilled(s) = &txn.changes {
                for c in s.iter() {
                    c.expect("a spill file written by this process reads back");
                }
            }
        }
    }
});
