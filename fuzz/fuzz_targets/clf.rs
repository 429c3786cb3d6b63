//! The CLF parser on any bytes.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check(r#"{"type": "clf"}"#, data, true, |_| false);
    // With malformed_status a bad line may also become a row: no count to check, no panic.
    common::check(
        r#"{"type": "clf", "malformed_status": 999}"#,
        data,
        false,
        |_| false,
    );
});
