//! The JSON-lines parser on any bytes, with every field type declared.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check(
        r#"{"type": "json", "fields": [
            {"name": "timestamp", "type": "timestamp"},
            {"name": "type", "type": "string", "required": true},
            {"name": "n", "type": "int"},
            {"name": "u", "type": "uint"},
            {"name": "x", "type": "float"},
            {"name": "ok", "type": "bool"},
            {"name": "s", "type": "timestamp_s"},
            {"name": "geo.country", "type": "string"}
        ]}"#,
        data,
        true,
        |l| l.iter().all(u8::is_ascii_whitespace),
    );
});
