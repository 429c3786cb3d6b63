//! Helpers shared by the end-to-end tests: the golden cases under `tests/golden/`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// One golden case: `tests/golden/<name>/pipeline.toml` and `expected/<sink>.jsonl`.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub pipeline: PathBuf,
    doc: toml::Table,
}

impl Case {
    pub fn new(name: &str) -> Case {
        Case::at(
            name,
            &root().join("tests/golden").join(name).join("pipeline.toml"),
        )
    }

    /// Any pipeline file (an example), named `name`.
    pub fn at(name: &str, pipeline: &Path) -> Case {
        let doc = toml::from_str(&std::fs::read_to_string(pipeline).unwrap()).unwrap();
        Case {
            name: name.into(),
            dir: pipeline.parent().unwrap().to_path_buf(),
            pipeline: pipeline.to_path_buf(),
            doc,
        }
    }

    fn names(&self, section: &str, ty: Option<&str>) -> Vec<String> {
        let t = self
            .doc
            .get(section)
            .and_then(|s| s.as_table())
            .cloned()
            .unwrap_or_default();
        t.iter()
            .filter(|(_, v)| ty.is_none() || v.get("type").and_then(|t| t.as_str()) == ty)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Names of the case's JSON-lines sinks (each has an expected file).
    pub fn jsonl_sinks(&self) -> Vec<String> {
        self.names("sink", Some("jsonl"))
    }

    /// Names of its sources.
    pub fn sources(&self) -> Vec<String> {
        self.names("source", None)
    }

    /// The case's input: a file of the repository (it must be there), or one under ../shared,
    /// or `None` (with a message) when ../shared is not there. Under `CI=true` a missing
    /// ../shared is a failure: CI must check the real-data cases, not skip them.
    pub fn input(&self) -> Option<PathBuf> {
        let text = std::fs::read_to_string(&self.pipeline).unwrap();
        let path = text
            .lines()
            .find_map(|l| l.strip_prefix("path = \""))
            .map(|p| p.trim_end_matches('"'))
            .unwrap_or_else(|| panic!("{}: no input path", self.name));
        let full = root().join(path);
        if full.exists() {
            return Some(full);
        }
        assert!(
            path.starts_with("../shared/"),
            "{}: {} is not in the repository",
            self.name,
            full.display()
        );
        missing_shared(&format!("golden case {}", self.name), &full);
        None
    }

    pub fn expected_path(&self, sink: &str) -> PathBuf {
        self.dir.join("expected").join(format!("{sink}.jsonl"))
    }

    pub fn expected(&self, sink: &str) -> String {
        let p = self.expected_path(sink);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|_| panic!("{} missing; run with UPDATE_GOLDEN=1", p.display()))
    }

    /// Names of its Parquet table sinks.
    pub fn parquet_sinks(&self) -> Vec<String> {
        self.names("sink", Some("parquet"))
    }

    /// Names of its archive sinks.
    pub fn archive_sinks(&self) -> Vec<String> {
        self.names("sink", Some("archive"))
    }

    /// `--set` arguments that send every jsonl sink to `dir/<sink>.jsonl` and every Parquet
    /// table and archive to `dir/<sink>/`.
    pub fn sink_args(&self, dir: &Path) -> Vec<String> {
        let jsonl = self
            .jsonl_sinks()
            .into_iter()
            .map(|s| (format!("sink.{s}.path"), dir.join(format!("{s}.jsonl"))));
        let tables = self
            .parquet_sinks()
            .into_iter()
            .chain(self.archive_sinks())
            .map(|s| (format!("sink.{s}.path"), dir.join(&s)));
        jsonl
            .chain(tables)
            .flat_map(|(k, p)| ["--set".to_string(), format!("{k}={}", p.display())])
            .collect()
    }

    /// Fails with the first differing line if `got` is not the expected output of `sink`.
    pub fn assert_output(&self, sink: &str, got: &str, what: &str) {
        self.assert_same(sink, got, &self.expected(sink), what);
    }

    /// Fails with the first differing line if `got` is not `want`.
    pub fn assert_same(&self, sink: &str, got: &str, want: &str, what: &str) {
        if got != want {
            let first = got.lines().zip(want.lines()).position(|(a, b)| a != b);
            panic!(
                "{}/{sink} ({what}): output differs from {} ({} lines vs {} expected; first difference at line {:?})\n got: {:?}\nwant: {:?}",
                self.name,
                self.expected_path(sink).display(),
                got.lines().count(),
                want.lines().count(),
                first.map(|i| i + 1),
                first.and_then(|i| got.lines().nth(i)),
                first.and_then(|i| want.lines().nth(i)),
            );
        }
    }
}

/// Drops `"fired_at"` (the wall-clock time an alert left), the one field that differs between
/// runs.
pub fn without_wall_clock(text: &str) -> String {
    text.lines()
        .map(|l| match l.find(r#","fired_at":""#) {
            Some(i) => {
                let rest = &l[i + 13..];
                let end = rest.find('"').map_or(rest.len(), |e| e + 1);
                format!("{}{}\n", &l[..i], &rest[end..])
            }
            None => format!("{l}\n"),
        })
        .collect()
}

/// Every row of a Parquet table directory, one line per row (columns rendered by Arrow's
/// display), sorted: a table's content as a multiset, whatever its file layout.
pub fn table_rows(table: &Path) -> Vec<String> {
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    if table.exists() {
        walk(table, &mut files);
    }
    let mut rows = Vec::new();
    let opts = FormatOptions::default();
    for f in files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&f).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            // Timestamps as epoch milliseconds: named time zones need chrono-tz to display.
            let cols: Vec<_> = b
                .columns()
                .iter()
                .map(|c| match c.data_type() {
                    arrow_schema::DataType::Timestamp(_, _) => {
                        arrow_cast::cast(c, &arrow_schema::DataType::Int64).unwrap()
                    }
                    _ => c.clone(),
                })
                .collect();
            let fmts: Vec<_> = cols
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
                .collect();
            for r in 0..b.num_rows() {
                let cells: Vec<String> = fmts.iter().map(|f| f.value(r).to_string()).collect();
                rows.push(cells.join(","));
            }
        }
    }
    rows.sort();
    rows
}

/// An archive's finished files, decoded and concatenated in name order per folder (the
/// records of each folder in arrival order, whatever the files' boundaries), and the names of
/// files still in progress.
pub fn archive_content(dir: &Path) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    use std::io::Read;
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    if dir.exists() {
        walk(dir, &mut files);
    }
    files.sort();
    let mut done = std::collections::BTreeMap::<String, String>::new();
    let mut unfinished = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        // `_weir_runs` and other `_`/`.` files are the archive's bookkeeping, not records
        // (readers skip them, as Spark and Hive skip `_SUCCESS`).
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        if name.ends_with(".inprogress") {
            unfinished.push(f.display().to_string());
            continue;
        }
        let folder = f
            .parent()
            .unwrap()
            .strip_prefix(dir)
            .unwrap()
            .display()
            .to_string();
        let bytes = std::fs::read(&f).unwrap();
        let mut text = String::new();
        if name.ends_with(".gz") {
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
        } else {
            text = String::from_utf8(bytes).unwrap();
        }
        done.entry(folder).or_default().push_str(&text);
    }
    (done, unfinished)
}

/// Reports an input under ../shared that is not here: a skip with the reason, or a failure
/// under `CI=true`.
pub fn missing_shared(what: &str, path: &Path) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what}: {} is not here; CI must have ../shared",
        path.display()
    );
    eprintln!(
        "skipping {what}: {} is not here (../shared is optional outside CI)",
        path.display()
    );
}

/// A `weir run --quiet` that serves HTTP (its pipeline listens on a free port), started in
/// `dir`. It is killed when dropped unless [`Serving::stop`] ended it.
pub struct Serving {
    pub child: std::process::Child,
    /// Where it serves (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The line that said so.
    pub first: String,
    rest: Option<std::thread::JoinHandle<String>>,
}

impl Serving {
    pub fn start(dir: &Path, pipeline: &Path) -> Serving {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .current_dir(dir)
            .args(["run", "--quiet"])
            .arg(pipeline)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        stderr.read_line(&mut first).unwrap();
        let Some(url) = first
            .strip_prefix("weir: serving at ")
            .and_then(|r| r.split_whitespace().next())
            .map(|u| u.trim_end_matches(';').to_string())
        else {
            let _ = child.kill();
            panic!("the run says where it serves, not {first:?}");
        };
        let rest = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        Serving {
            child,
            url,
            first,
            rest: Some(rest),
        }
    }

    /// SIGTERM, as a service manager stops it; asserts a clean exit and returns what it
    /// printed after the first line.
    pub fn stop(mut self) -> String {
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = self.child.wait().unwrap();
        let log = self.rest.take().unwrap().join().unwrap();
        assert!(status.success(), "{log}");
        log
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if self.rest.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
