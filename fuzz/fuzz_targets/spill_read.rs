//! Spill-file contents -> changes. What reads back must write and read back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::model::spill::read_changes;

fuzz_target!(|data: &[u8]| {
    for change in read_changes(data).flatten() {
        let line = serde_json::to_string(&change).expect("a change serializes");
        let again: tandem::model::Change =
            serde_json::from_str(&line).expect("a written change reads back");
        assert_eq!(change, again, "spill round trip changed {line}");
    }
});
