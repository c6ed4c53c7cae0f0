//! MySQL binary JSON -> JSON text. What decodes must be JSON that parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem::capture::mysql::jsonb::to_text;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = to_text(data) {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&text) {
            panic!("decoded binary JSON is not JSON ({e}): {text}");
        }
    }
});
