//! Spill-file contents -> changes. What reads back must write and read back unchanged, in the spill
//! file's own format and as JSON (dead letters, `tandem tail`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::model::spill::{encode_change, read_changes};

fuzz_target!(|data: &[u8]| {
    for change in read_changes(data).flatten() {
        let frame = encode_change(&change, Vec::new()).expect("a change encodes");
        let again = read_changes(&frame[..])
            .next()
            .expect("one frame")
            .expect("a written change reads back");
        assert_eq!(change, again, "spill round trip changed {change:?}");
        let line = serde_json::to_string(&change).expect("a change serializes");
        let again: tandem::model::Change =
            serde_json::from_str(&line).expect("a written change reads back");
        assert_eq!(change, again, "JSON round trip changed {line}");
    }
});
