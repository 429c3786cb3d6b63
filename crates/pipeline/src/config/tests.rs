//! Pipeline-file tests: every error reported with its key path, overrides, planning.

use super::*;
use weir_sink::archive::ArchiveConfig;
use weir_source::file::FileConfig;
use weir_window::AggregateConfig;

const GOOD: &str = r#"
[source.logs]
type = "file"
path = "access.log"
format = { type = "clf", malformed_status = 999 }
event_time = { field = "timestamp", max_out_of_orderness = "30s" }

[stage.counts]
type = "aggregate"
input = "logs"
time_field = "timestamp"
window = { type = "tumbling", size = "5m" }
group_by = ["status"]
aggregates = [{ fn = "count" }]

[sink.out]
type = "stdout"
input = "counts"
"#;

fn errors(text: &str) -> Vec<String> {
    match parse(text, &[]).and_then(Plan::new) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_good_file_plans_with_projection_pushed_into_the_parser() {
    let plan = Plan::new(parse(GOOD, &[]).unwrap()).unwrap();
    let fields: Vec<String> = plan.schemas["logs"]
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        fields,
        ["timestamp", "status"],
        "only what the aggregate reads is materialised"
    );
    let out: Vec<String> = plan.schemas["counts"]
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(out, ["window_start", "window_end", "status", "count"]);
}

#[test]
fn every_error_is_reported_with_its_path() {
    let text = GOOD
        .replace(r#"size = "5m""#, r#"size = "5 minutes""#)
        .replace(
            r#"type = "stdout""#,
            r#"type = "stdout"
colour = "always""#,
        )
        .replace(
            r#"max_out_of_orderness = "30s""#,
            r#"max_out_of_orderness = "30s", field2 = 1"#,
        )
        + "[sink.two]\ntype = \"stdout\"\ninput = \"countz\"\n";
    let errs = errors(&text);
    let expect = [
        "source.logs.event_time.field2: unknown field `field2`, expected one of `field`, `max_out_of_orderness`, `idle_timeout`, `max_future`",
        "stage.counts.window.size: expected a duration like \"5m\", \"30s\" or \"250ms\", got \"5 minutes\"",
        "sink.out.colour: unknown field `colour`, expected `format`",
        "sink.two.input: no source or stage named \"countz\"; there are: counts, logs",
    ];
    for e in expect {
        assert!(errs.iter().any(|x| x == e), "missing {e:?} in {errs:#?}");
    }
    assert_eq!(errs.len(), expect.len(), "{errs:#?}");
}

#[test]
fn schema_errors_name_the_stage_key() {
    let errs = errors(&GOOD.replace(r#"group_by = ["status"]"#, r#"group_by = ["stauts"]"#));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("stage.counts.group_by[0]: no field \"stauts\" in the input; it has "),
        "{errs:?}"
    );
}

#[test]
fn unknown_types_sections_and_ports_are_errors() {
    let text = GOOD
        .replace(r#"type = "file""#, r#"type = "fiel""#)
        .replace(r#"input = "counts""#, r#"input = "counts.oops""#)
        + "\n[sinks.x]\ntype = \"stdout\"\n";
    let errs = errors(&text);
    assert!(
        errs.iter().any(|e| e.starts_with(
            "source.logs.type: unknown type \"fiel\"; expected one of file, tail, stdin, generator"
        )),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("sink.out.input: \"counts.oops\"")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with("sinks: unknown section")),
        "{errs:#?}"
    );
}

#[test]
fn set_overrides_values_and_reads_plain_strings() {
    let sets = [
        "source.logs.path=/var/log/x.log".to_string(),
        r#"stage.counts.window.size="1m""#.to_string(),
    ];
    let file = parse(GOOD, &sets).unwrap();
    let source = file.sources[0]
        .kind
        .as_ref()
        .as_any()
        .downcast_ref::<FileConfig>();
    assert_eq!(
        source.expect("a file source").path,
        Path::new("/var/log/x.log")
    );
    let stage = file.stages[0]
        .kind
        .as_ref()
        .as_any()
        .downcast_ref::<AggregateConfig>();
    assert_eq!(
        stage.expect("an aggregate").window.size_slide(),
        (60_000, 60_000)
    );
    let err = parse(GOOD, &["nonsense".to_string()]).err().unwrap();
    assert_eq!(
        err[0].to_string(),
        "--set: expected key.path=value, got \"nonsense\""
    );
}

#[test]
fn union_inputs_must_share_a_schema_and_cycles_are_refused() {
    let text = GOOD.to_string()
        + r#"
[source.other]
type = "stdin"
format = { type = "json", fields = [{ name = "timestamp", type = "timestamp" }] }

[stage.both]
type = "union"
input = ["logs", "other"]

[stage.a]
type = "union"
input = "b"

[stage.b]
type = "union"
input = "a"
"#;
    let errs = errors(&text);
    assert!(
        errs.iter().any(
            |e| e.starts_with("stage.both.input: inputs logs and other have different schemas")
        ),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("stage.a.input: its inputs form a cycle")),
        "{errs:#?}"
    );
}

#[test]
fn toml_syntax_errors_carry_the_position() {
    let errs = parse("[source.logs\n", &[]).err().unwrap();
    assert!(errs[0].to_string().contains("line 1"), "{}", errs[0]);
}

#[test]
fn projection_follows_filters_to_their_consumers() {
    let text = GOOD.replace(
        r#"input = "logs"
time_field"#,
        r#"input = "errors_only"
time_field"#,
    ) + r#"
[stage.errors_only]
type = "filter"
input = "logs"
where = "status >= 500 AND method <> 'HEAD'"
"#;
    let plan = Plan::new(parse(&text, &[]).unwrap()).unwrap();
    let fields: Vec<String> = plan.schemas["logs"]
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(fields, ["timestamp", "method", "status"]);
    let errs = errors(&GOOD.replace(r#"type = "aggregate""#, "type = \"filter\"\nwhere = \"status >\"").replace("time_field = \"timestamp\"\nwindow = { type = \"tumbling\", size = \"5m\" }\ngroup_by = [\"status\"]\naggregates = [{ fn = \"count\" }]\n", ""));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("stage.counts.where: in `status >`: sql parser error"),
        "{errs:?}"
    );
}

#[test]
fn table_sinks_check_their_columns_against_the_input() {
    let text = r#"
[source.logs]
type = "file"
path = "x.log"
format = { type = "clf" }
event_time = { field = "timestamp" }

[stage.c]
type = "aggregate"
input = "logs"
time_field = "timestamp"
window = { type = "tumbling", size = "5m" }
group_by = ["status"]
aggregates = [{ fn = "count" }]

[sink.pg]
type = "postgres"
input = "c"
url = "host=127.0.0.1"
table = "t"
key = ["window_start", "stauts"]

[sink.pq]
type = "parquet"
input = "c"
path = "tables/x"
partition_field = "count"
"#;
    assert_eq!(
        errors(text),
        [
            "sink.pg.key: the input has no column \"stauts\"; it has window_start, window_end, status, count",
            "sink.pq.partition_field: \"count\" is Int64, not a timestamp",
        ]
    );
}

#[test]
fn raw_lines_reach_an_archive_and_are_checked() {
    let with_raw = GOOD.replace(
        "event_time = { field = \"timestamp\", max_out_of_orderness = \"30s\" }",
        "event_time = { field = \"timestamp\", max_out_of_orderness = \"30s\" }\nraw_field = \"line\"",
    );
    let archive = "\n[sink.raw]\ntype = \"archive\"\ninput = \"logs\"\nformat = \"lines\"\nwindow = \"5m\"\npath = \"archive/raw\"\n";
    let plan = parse(&format!("{with_raw}{archive}"), &[])
        .and_then(Plan::new)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let fields: Vec<String> = plan.schemas["logs"]
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(fields.last().map(String::as_str), Some("line"));
    // Without raw_field there is no line to write; a name the format has is refused.
    assert_eq!(
        errors(&format!("{GOOD}{archive}")),
        ["sink.raw.format: the input has no text field \"line\" to write as lines; a source keeps its lines with raw_field = \"line\""]
    );
    assert_eq!(
        errors(&with_raw.replace("raw_field = \"line\"", "raw_field = \"status\"")),
        ["source.logs.raw_field: \"status\" is a field of the format already; choose another name"]
    );
    // Only the consumers that read the line make the parser keep it.
    let plan = parse(&with_raw, &[]).and_then(Plan::new).unwrap();
    assert!(plan.schemas["logs"].column_with_name("line").is_none());
}

/// The pipeline-file loader on mangled versions of every bundled example and golden case:
/// it returns errors, never panics. A quick, stable companion of the cargo fuzz target
/// `fuzz/fuzz_targets/loader.rs`, which CI runs under a sanitizer only with `FUZZ_LOADER=1`;
/// every input of that target's corpus is replayed here too.
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// Every input of the loader's fuzz corpus (`fuzz/corpus/loader`, seeds and what earlier
    /// fuzz runs kept): a list of errors that each say something, or a plan, never a panic.
    #[test]
    fn the_loader_fuzz_corpus_loads_or_is_refused_with_errors() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/loader");
        let mut replayed = 0;
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue; // the target skips what is not UTF-8
            };
            let errors = match parse(&text, &[]).and_then(Plan::new) {
                Ok(plan) => plan.preflight(),
                Err(errors) => {
                    assert!(!errors.is_empty(), "{:?}: refused with no error", e.path());
                    errors
                }
            };
            for err in errors {
                assert!(
                    !err.to_string().trim().is_empty(),
                    "{:?}: an empty error",
                    e.path()
                );
            }
            replayed += 1;
        }
        assert!(replayed >= 100, "only {replayed} corpus inputs in {dir:?}");
    }

    fn corpus() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = Vec::new();
        for dir in ["examples", "tests/golden", "bench"] {
            let mut stack = vec![root.join(dir)];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "toml") {
                        files.push(std::fs::read_to_string(&p).unwrap());
                    }
                }
            }
        }
        assert!(files.len() >= 8, "the corpus has {} files", files.len());
        files.push(GOOD.to_string());
        files
    }

    /// A few edits of the text: bytes replaced, removed or inserted, from TOML's alphabet.
    fn mangle(text: &str, edits: &[(usize, u8, u8)]) -> String {
        const ALPHABET: &[u8] = b"[]{}=\"'.,#\n 0123456789-_azAZ:/\\\t";
        let mut b = text.as_bytes().to_vec();
        for &(at, kind, with) in edits {
            if b.is_empty() {
                break;
            }
            let at = at % b.len();
            let c = ALPHABET[with as usize % ALPHABET.len()];
            match kind % 3 {
                0 => b[at] = c,
                1 => {
                    b.remove(at);
                }
                _ => b.insert(at, c),
            }
        }
        String::from_utf8_lossy(&b).into_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn mangled_pipelines_give_errors_not_panics(
            pick in any::<usize>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        ) {
            let corpus = corpus();
            let text = mangle(&corpus[pick % corpus.len()], &edits);
            // Ok or a list of errors with paths; a panic fails the test.
            if let Ok(plan) = parse(&text, &[]).and_then(Plan::new) {
                let _ = plan.preflight();
            }
        }
    }
}

#[test]
fn flush_interval_is_every_sinks_and_the_archive_keeps_its_own() {
    let with = |v: &str| GOOD.replace(r#"input = "counts""#, &format!("input = \"counts\"\n{v}"));
    let file = parse(&with(r#"flush_interval = "250ms""#), &[]).unwrap();
    assert_eq!(file.sinks[0].flush_interval.ms, 250);
    let file = parse(GOOD, &[]).unwrap();
    assert_eq!(
        file.sinks[0].flush_interval,
        weir_runtime::DEFAULT_FLUSH_INTERVAL
    );
    assert_eq!(
        errors(&with(r#"flush_interval = "0s""#)),
        ["sink.out.flush_interval: expected a duration above 0, got \"0s\""]
    );
    assert!(errors(&with(r#"flush_interval = "soon""#))[0].starts_with("sink.out.flush_interval"));
    // The archive reads the same key for its gzip members.
    let archive = r#"
[source.logs]
type = "file"
path = "access.log"
format = { type = "clf" }

[sink.raw]
type = "archive"
input = "logs"
path = "archive/logs"
flush_interval = "2s"
"#;
    let file = parse(archive, &[]).unwrap();
    assert_eq!(file.sinks[0].flush_interval.ms, 2_000);
    let archive = file.sinks[0]
        .kind
        .as_ref()
        .as_any()
        .downcast_ref::<ArchiveConfig>();
    assert_eq!(archive.expect("an archive").flush_interval.ms, 2_000);
}

#[test]
fn message_metadata_fields_need_a_json_format_that_declares_them() {
    let pipeline = |format: &str| {
        format!(
            r#"
[source.m]
type = "mqtt"
topics = ["a/#", "b/#/c"]
topic_field = "topic"
format = {format}
[sink.out]
type = "stdout"
input = "m"
"#
        )
    };
    let ok = pipeline(r#"{ type = "json", fields = [{ name = "topic", type = "string" }] }"#);
    assert!(
        errors(&ok)
            .iter()
            .all(|e| e.starts_with("source.m.topics[1]")),
        "{:?}",
        errors(&ok)
    );
    let undeclared = pipeline(r#"{ type = "json", fields = [{ name = "n", type = "int" }] }"#);
    assert!(
        errors(&undeclared).contains(&"source.m.topic_field: declare \"topic\" in format.fields, e.g. { name = \"topic\", type = \"string\" }".to_string()),
        "{:?}",
        errors(&undeclared)
    );
    let clf = pipeline(r#"{ type = "clf" }"#);
    assert!(
        errors(&clf).contains(&"source.m.topic_field: only a json format can carry it".to_string()),
        "{:?}",
        errors(&clf)
    );
}

#[test]
fn the_dashboard_names_node_outputs_and_shows_every_column() {
    // Outputs on the dashboard are enough of a sink; a source shown there keeps every field.
    let text = GOOD.replace("[sink.out]\ntype = \"stdout\"\ninput = \"counts\"\n", "")
        + "[server]\nlisten = \"127.0.0.1:0\"\ndashboard = [\"counts\", { output = \"logs\", view = \"feed\" }, \"logs.errors\"]\n";
    let plan = Plan::new(parse(&text, &[]).unwrap()).unwrap();
    assert!(
        plan.schemas["logs"].fields().len() > 2,
        "the feed of logs shows all its fields, not only what the aggregate reads"
    );
    assert_eq!(plan.dashboard.len(), 3);

    let bad = GOOD.to_string()
        + "[server]\ndashboard = [\"nope\", \"counts.bogus\", \"out\", { output = \"counts\", colour = \"red\" }]\n";
    let e = errors(&bad);
    assert!(
        e.iter()
            .any(|m| m.starts_with("server.dashboard[3]") && m.contains("unknown field `colour`")),
        "{e:?}"
    );
    let bad = GOOD.to_string() + "[server]\ndashboard = [\"nope\", \"counts.bogus\", \"out\"]\n";
    let e = errors(&bad);
    assert!(
        e.iter().any(|m| m.starts_with("server.dashboard[0]")
            && m.contains("no source or stage named \"nope\"")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("server.dashboard[1]") && m.contains("NAME.errors")),
        "{e:?}"
    );
    // A sink has no output to show.
    assert!(
        e.iter().any(|m| m.starts_with("server.dashboard[2]")),
        "{e:?}"
    );
}
