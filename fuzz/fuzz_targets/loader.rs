//! The pipeline-file loader (`weir check`'s parse, plan and preflight) on any text: a list of
//! errors that each say something, never a panic, a hang or an allocation the text asks for.
//! Seeds: every bundled example, golden case and bench pipeline (`corpus/loader`), with
//! `loader.dict` holding the keys and values the loader knows.
#![no_main]

use weir_pipeline::config::{parse, Plan};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let errors = match parse(text, &[]).and_then(Plan::new) {
        Ok(plan) => plan.preflight(),
        Err(errors) => {
            assert!(!errors.is_empty(), "a refused pipeline names no error");
            errors
        }
    };
    for e in errors {
        assert!(!e.to_string().trim().is_empty(), "an empty error: {e:?}");
    }
});
