//! The CSV parser on any bytes, with a header line and every field type declared.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let fields = r#"[
        {"name": "timestamp", "type": "timestamp"},
        {"name": "status", "type": "uint", "required": true},
        {"name": "n", "type": "int"},
        {"name": "x", "type": "float"},
        {"name": "ok", "type": "bool"},
        {"name": "path", "type": "string"}
    ]"#;
    // Without a header every line is a record; with one, the first line is not.
    common::check(
        &format!(r#"{{"type": "csv", "header": false, "fields": {fields}}}"#),
        data,
        true,
        <[u8]>::is_empty,
    );
    common::check(
        &format!(r#"{{"type": "csv", "header": true, "fields": {fields}}}"#),
        data,
        false,
        <[u8]>::is_empty,
    );
});
