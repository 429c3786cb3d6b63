//! Shared by the targets: feed bytes to a parser, as the source node does, and check that
//! every line became a row or a dead letter.

use weir_core::deadletter::DeadLetters;
use weir_format::FormatConfig;

/// Lines in `data` as the source node frames them (a last line without newline counts).
pub fn lines(data: &[u8]) -> u64 {
    let n = data.iter().filter(|&&b| b == b'\n').count() as u64;
    n + u64::from(!data.is_empty() && data.last() != Some(&b'\n'))
}

/// Lines the parser skips as blank (`skips` says which), as the source node frames them:
/// split at newlines, a trailing carriage return removed.
pub fn skipped(data: &[u8], skips: fn(&[u8]) -> bool) -> u64 {
    if data.is_empty() {
        return 0;
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| skips(l))
        .count() as u64
}

/// Parses `data` with the format in `cfg` (JSON), with and without the raw line kept; every
/// line is a row, a dead letter or (`skips`) a blank line, and both ways agree.
pub fn check(cfg: &str, data: &[u8], rows_per_line: bool, skips: fn(&[u8]) -> bool) {
    let cfg: FormatConfig = serde_json::from_str(cfg).expect("a valid format");
    let mut counts = Vec::new();
    for raw in [None, Some("line")] {
        let mut p = weir_format::build_source_parser(&cfg, raw, None).expect("builds");
        let mut dead = DeadLetters::new("fuzz");
        let n = p.parse_chunk(data, 1, &mut dead);
        let rows = p.finish().num_rows() as u64;
        assert_eq!(n, lines(data), "every line is counted");
        if rows_per_line {
            assert_eq!(
                rows + dead.total() + skipped(data, skips),
                n,
                "each line is a row, a dead letter or blank"
            );
        }
        counts.push((rows, dead.total()));
    }
    assert_eq!(counts[0], counts[1], "keeping the raw line changes nothing");
}
