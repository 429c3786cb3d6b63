//! The source trait: a producer of bytes with a position it can resume from.

use serde::{Deserialize, Serialize};

use crate::Result;

/// What one [`Source::read`] call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes were appended to the buffer.
    Data,
    /// Nothing arrived within the wait; the source is still live (a followed file, stdin).
    Idle,
    /// The input is finished and nothing more will come.
    Eof,
}

/// Where a source stands, enough to resume after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// Path of the file being read, if the source is a file.
    pub path: Option<String>,
    /// Identity of the file (device, inode) so that a rotated file is not mistaken for it.
    pub file_id: Option<(u64, u64)>,
    /// Bytes consumed from the start of the input (of the decompressed stream for `.gz`).
    pub offset: u64,
    /// Where each split of a message source stands (a JetStream consumer on its stream, a
    /// partition): the position of the last message handed out. Empty for byte sources.
    #[serde(default)]
    pub splits: Vec<SplitPosition>,
}

/// The position of one split of a message source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPosition {
    /// Which split, as the source names it (`stream/consumer`, `topic/partition`).
    pub split: String,
    /// The last message handed out (a stream sequence, a partition offset).
    pub position: u64,
}

impl SourcePosition {
    /// A position that is only a byte offset (streams without a file behind them).
    pub fn at(offset: u64) -> Self {
        SourcePosition {
            path: None,
            file_id: None,
            offset,
            splits: Vec::new(),
        }
    }

    /// A message source's position: `offset` bytes handed out, and `position` (the last
    /// message handed out) on its one split `split`.
    pub fn of_split(offset: u64, split: String, position: u64) -> Self {
        SourcePosition {
            path: None,
            file_id: None,
            offset,
            splits: vec![SplitPosition { split, position }],
        }
    }

    /// Where split `name` stands, if this position has it.
    pub fn split(&self, name: &str) -> Option<u64> {
        self.splits
            .iter()
            .find(|s| s.split == name)
            .map(|s| s.position)
    }
}

/// A producer of raw bytes. Framing into lines and parsing happen downstream of it, in the
/// source node the runtime builds around it.
pub trait Source: Send {
    /// Appends the next bytes to `buf`, waiting at most `wait` for some to arrive.
    fn read(&mut self, buf: &mut Vec<u8>, wait: std::time::Duration) -> Result<ReadOutcome>;

    /// The position after the last byte returned by [`Source::read`].
    fn position(&self) -> SourcePosition;

    /// The position before the last `unread` bytes returned by [`Source::read`], which the
    /// node holds unused (a partial line, lines a rate holds back): what a checkpoint records.
    /// By default the byte offset moves back; a message source also moves its splits back to
    /// the last message wholly before that point.
    fn position_before(&self, unread: u64) -> SourcePosition {
        let mut p = self.position();
        p.offset = p.offset.saturating_sub(unread);
        p
    }

    /// Continues from `pos`, a position this kind of source returned earlier.
    fn seek(&mut self, pos: &SourcePosition) -> Result<()>;

    /// The checkpoint holding `pos`, a position this source returned, is durable: tell the
    /// broker that everything up to it is consumed (acknowledge, commit an offset). Without
    /// checkpoints the runtime calls this after every read. By default nothing: a file has no
    /// one to tell.
    fn commit(&mut self, _pos: &SourcePosition) -> Result<()> {
        Ok(())
    }

    /// Total bytes the source will produce, when known (for progress bars).
    fn size_hint(&self) -> Option<u64> {
        None
    }

    /// Why the input ended early, once [`Source::read`] returned [`ReadOutcome::Eof`] for a
    /// failure (a corrupt compressed file): the node ends the stream as at a normal end, so
    /// what was read is processed and flushed, then fails the run with this error.
    fn failure(&mut self) -> Option<crate::Error> {
        None
    }

    /// The pipeline is stopping (Ctrl-C, SIGTERM). Return `true` if the source holds input it
    /// has already promised to deliver (records it answered a client for): it takes no more,
    /// and [`Source::read`] goes on handing out what it holds until it returns
    /// [`ReadOutcome::Eof`]. By default `false`: the input ends at once, as a file's can be
    /// read again from the checkpoint or from the start.
    fn stopping(&mut self) -> bool {
        false
    }
}

/// For a message source: where each message handed out ends in the byte stream, so that a
/// position before bytes the node has not used yet ([`Source::position_before`]) names the
/// last message wholly used. Only messages the node may still hold are kept: each read first
/// drops those before the bytes the node passes back unused.
#[derive(Debug, Default)]
pub struct MessageEnds {
    /// (byte offset after the message, its id), oldest first.
    ends: std::collections::VecDeque<(u64, u64)>,
    /// The id of the last message before them.
    base: u64,
}

impl MessageEnds {
    /// No message held; `base` is the id of the last one used.
    pub fn new(base: u64) -> Self {
        MessageEnds {
            ends: Default::default(),
            base,
        }
    }

    /// Message `id` ends at byte offset `end`.
    pub fn push(&mut self, end: u64, id: u64) {
        self.ends.push_back((end, id));
    }

    /// Everything before byte offset `used` was used by the node.
    pub fn used(&mut self, used: u64) {
        while self.ends.front().is_some_and(|(end, _)| *end <= used) {
            self.base = self.ends.pop_front().expect("checked").1;
        }
    }

    /// The id of the last message that ends at or before byte offset `at`.
    pub fn before(&self, at: u64) -> u64 {
        match self.ends.partition_point(|(end, _)| *end <= at) {
            0 => self.base,
            n => self.ends[n - 1].1,
        }
    }
}

/// How a message source turns message payloads into input lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// One record per message: line breaks inside it become spaces, so a pretty-printed JSON
    /// object is one record.
    #[default]
    Message,
    /// One record per line of a message (NDJSON batches, log lines).
    Lines,
}

impl Framing {
    /// Appends `payload` to `buf` as lines.
    pub fn append(self, payload: &[u8], buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.extend_from_slice(payload);
        match self {
            Framing::Message => {
                for b in &mut buf[start..] {
                    if *b == b'\n' || *b == b'\r' {
                        *b = b' ';
                    }
                }
                buf.push(b'\n');
            }
            Framing::Lines => {
                if buf.len() > start && buf.last() != Some(&b'\n') {
                    buf.push(b'\n');
                }
            }
        }
    }
}

/// Appends `payload` to `out` with the `"name":"value"` members of `fields` first when the
/// payload is a JSON object (after any leading whitespace); otherwise appends it unchanged,
/// and the parser reports it as usual. How a message source carries a message's topic,
/// subject or broker time into its records.
pub fn with_json_fields(payload: &[u8], fields: &[(&str, &str)], out: &mut Vec<u8>) {
    let start = payload
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(payload.len());
    if fields.is_empty() || payload.get(start) != Some(&b'{') {
        out.extend_from_slice(payload);
        return;
    }
    let mut members = String::new();
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            members.push(',');
        }
        crate::value::write_json_str(name, &mut members);
        members.push(':');
        crate::value::write_json_str(value, &mut members);
    }
    let rest = &payload[start + 1..];
    let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
    out.extend_from_slice(&payload[..=start]);
    out.extend_from_slice(members.as_bytes());
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_field_goes_first_into_objects_only() {
        let with = |p: &str| {
            let mut out = Vec::new();
            with_json_fields(p.as_bytes(), &[("topic", "a/\"b\"")], &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(with("{\"x\":1}"), "{\"topic\":\"a/\\\"b\\\"\",\"x\":1}");
        assert_eq!(with("  { }"), "  {\"topic\":\"a/\\\"b\\\"\" }");
        assert_eq!(with("[1]"), "[1]");
        assert_eq!(with(""), "");
        let mut two = Vec::new();
        with_json_fields(b"{\"x\":1}", &[("a", "1"), ("b", "2")], &mut two);
        assert_eq!(two, b"{\"a\":\"1\",\"b\":\"2\",\"x\":1}");
    }

    #[test]
    fn message_ends_map_offsets_back_to_whole_messages() {
        let mut e = MessageEnds::new(4);
        for (end, id) in [(10, 5), (20, 6), (35, 7)] {
            e.push(end, id);
        }
        assert_eq!(e.before(9), 4);
        assert_eq!(e.before(10), 5);
        assert_eq!(e.before(34), 6);
        assert_eq!(e.before(99), 7);
        e.used(20);
        assert_eq!(e.before(19), 6, "what was used stays the floor");
        assert_eq!(e.before(35), 7);
    }
}
