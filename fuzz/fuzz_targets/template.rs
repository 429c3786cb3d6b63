//! The Apache and nginx `log_format` parsers on any bytes.
#![no_main]

mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::check(
        r#"{"type": "apache", "log_format": "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\" %D"}"#,
        data,
        true,
        |_| false,
    );
    // Laid out as CLF: read by the CLF parser's scanner, the general reader as fallback.
    common::check(
        r#"{"type": "apache", "log_format": "combined"}"#,
        data,
        true,
        |_| false,
    );
    common::check(
        r#"{"type": "nginx", "malformed_status": 999, "log_format": "$remote_addr [$time_iso8601] \"$request\" $status $body_bytes_sent $request_time \"$upstream_response_time\" $upstream_addr $host"}"#,
        data,
        false,
        |_| false,
    );
});
