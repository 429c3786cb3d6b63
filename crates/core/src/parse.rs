//! The parser trait: bytes of complete lines in, a typed batch and dead letters out.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::deadletter::DeadLetters;

/// Turns lines of text into rows of a typed batch. A line that cannot be parsed is never an
/// error: the parser pushes it to `dead` with a reason (and may still emit a row for it, as the
/// CLF parser does with its `malformed_status`).
pub trait Parser: Send {
    /// The schema of the batches this parser produces (after projection).
    fn schema(&self) -> SchemaRef;

    /// Parses every line of `chunk`. `chunk` holds whole lines, each ended by `\n` except
    /// possibly the last one at the end of input. `first_line` is the 1-based number of the
    /// first line in the chunk. Returns the number of lines consumed.
    fn parse_chunk(&mut self, chunk: &[u8], first_line: u64, dead: &mut DeadLetters) -> u64;

    /// Rows parsed since the last [`Parser::finish`].
    fn pending_rows(&self) -> usize;

    /// Takes the parsed rows as a batch.
    fn finish(&mut self) -> RecordBatch;

    /// Why no later line of this input can become a row, if that is so (a CSV header without
    /// a declared column): the run stops with this error instead of sending every line to
    /// the dead letters and ending as if all were well.
    fn fatal(&self) -> Option<String> {
        None
    }

    /// Takes what the parser counted besides rows and dead letters since the last call.
    fn take_counts(&mut self) -> ParseCounts {
        ParseCounts::default()
    }

    /// Whether separate instances of this parser may parse different chunks of one input and
    /// produce, together, what one instance parsing the chunks in order would: nothing read
    /// in one chunk changes how a later one is parsed. A CSV header does; a cache of recent
    /// timestamps does not. The runtime parses such a source's chunks on several threads
    /// (`weir run --workers`).
    fn chunks_independent(&self) -> bool {
        false
    }
}

/// Lines a parser neither made a clean row of nor sent to the dead letters, counted so that
/// every line read is accounted for in the summary and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseCounts {
    /// Blank lines, skipped.
    pub blank: u64,
    /// Rows kept although a part of the line could not be split as its format says (a web
    /// log's request that is not `METHOD PATH PROTOCOL`): the rest of the row is real.
    pub odd: u64,
}

/// Calls `f(line_no, line)` for each line of `chunk`, without the `\n` and a trailing `\r`.
/// Returns the number of lines.
#[inline]
pub fn for_each_line(chunk: &[u8], first_line: u64, mut f: impl FnMut(u64, &[u8])) -> u64 {
    let mut n = 0u64;
    let mut start = 0usize;
    for end in memchr::memchr_iter(b'\n', chunk) {
        f(first_line + n, trim_cr(&chunk[start..end]));
        n += 1;
        start = end + 1;
    }
    if start < chunk.len() {
        f(first_line + n, trim_cr(&chunk[start..]));
        n += 1;
    }
    n
}

#[inline]
fn trim_cr(line: &[u8]) -> &[u8] {
    match line.last() {
        Some(b'\r') => &line[..line.len() - 1],
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_and_without_final_newline() {
        let mut seen = Vec::new();
        let n = for_each_line(b"a\r\nb\n\nc", 10, |no, l| seen.push((no, l.to_vec())));
        assert_eq!(n, 4);
        assert_eq!(
            seen,
            vec![
                (10, b"a".to_vec()),
                (11, b"b".to_vec()),
                (12, vec![]),
                (13, b"c".to_vec())
            ]
        );
    }
}
