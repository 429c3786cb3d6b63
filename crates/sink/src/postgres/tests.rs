//! Against the PostgreSQL server on 127.0.0.1:5432 (database `test`), as in CI.

use std::sync::Arc;

use arrow_array::{Int64Array, StringArray, TimestampMillisecondArray, UInt16Array};

use super::*;

const URL: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

fn cfg(table: &str) -> PostgresConfig {
    PostgresConfig {
        url: URL.into(),
        table: table.into(),
        key: vec!["window_start".into(), "status".into()],
        batch_rows: 2,
        retries: 1,
        max_backoff: Duration::from_ms(50),
    }
}

fn batch(rows: &[(i64, u16, i64, &str)]) -> RecordBatch {
    let ts = TimestampMillisecondArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .with_timezone("UTC");
    RecordBatch::try_from_iter([
        ("window_start", Arc::new(ts) as _),
        (
            "status",
            Arc::new(UInt16Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )) as _,
        ),
        (
            "count",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )) as _,
        ),
        (
            "note",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )) as _,
        ),
    ])
    .unwrap()
}

fn client() -> postgres::Client {
    postgres::Client::connect(URL, postgres::NoTls).expect("PostgreSQL on 127.0.0.1:5432")
}

fn fresh(table: &str) {
    client()
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; DELETE FROM weir_sink_epochs WHERE sink = '{table}'"
        ))
        .or_else(|_| client().batch_execute(&format!("DROP TABLE IF EXISTS {table}")))
        .unwrap();
}

fn rows(table: &str) -> Vec<(String, i32, i64, String)> {
    client()
        .query(
            &format!(
                "SELECT to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), status, count, note \
                 FROM {table} ORDER BY 1, 2"
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

#[test]
fn upserts_typed_rows_and_a_replay_does_not_double_count() {
    let t = "weir_test_upsert";
    fresh(t);
    let mut s = PostgresSink::new(&cfg(t));
    let b = batch(&[
        (0, 200, 10, "a\tb"),
        (0, 404, 2, "line\nbreak"),
        (300_000, 200, 7, "\\"),
    ]);
    s.write(&b).unwrap();
    s.flush().unwrap();
    let want = vec![
        ("1970-01-01 00:00".to_string(), 200, 10, "a\tb".to_string()),
        (
            "1970-01-01 00:00".to_string(),
            404,
            2,
            "line\nbreak".to_string(),
        ),
        ("1970-01-01 00:05".to_string(), 200, 7, "\\".to_string()),
    ];
    assert_eq!(rows(t), want);
    // The same rows again (a replay after a crash), one of them corrected.
    let mut again = PostgresSink::new(&cfg(t));
    again
        .write(&batch(&[
            (0, 200, 10, "a\tb"),
            (0, 404, 3, "line\nbreak"),
            (300_000, 200, 7, "\\"),
        ]))
        .unwrap();
    again.pre_commit(5).unwrap();
    let mut w = want.clone();
    w[1].2 = 3;
    assert_eq!(rows(t), w, "replaced, not added");
    let epoch: i64 = client()
        .query_one("SELECT epoch FROM weir_sink_epochs WHERE sink = $1", &[&t])
        .unwrap()
        .get(0);
    assert_eq!(epoch, 5, "the epoch committed with the rows");
    let ty: String = client()
        .query_one(
            "SELECT data_type FROM information_schema.columns WHERE table_name = $1 AND column_name = 'window_start'",
            &[&t],
        )
        .unwrap()
        .get(0);
    assert_eq!(ty, "timestamp with time zone");
}

#[test]
fn an_unreachable_server_is_retried_then_reported_with_rows_kept() {
    let mut c = cfg("weir_test_unreachable");
    c.url = "host=127.0.0.1 port=1 user=postgres dbname=test connect_timeout=1".into();
    let mut s = PostgresSink::new(&c);
    let err = s
        .write(&batch(&[(0, 200, 1, ""), (0, 201, 1, "")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("writing 2 rows to PostgreSQL table weir_test_unreachable (attempt 2)"),
        "{err}"
    );
    // Issue 10: the warnings and the error said only "db error"; the cause is named now.
    assert!(err.contains("Connection refused"), "{err}");
    assert_eq!(s.rows, 2, "the rows are still buffered");
}

#[test]
fn a_key_column_that_does_not_exist_is_refused() {
    let mut c = cfg("weir_test_badkey");
    c.key = vec!["window_start".into(), "nope".into()];
    let err = PostgresSink::new(&c)
        .write(&batch(&[(0, 200, 1, "")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("the input has no column \"nope\""), "{err}");
}

/// Issue 10: a table whose columns differ from the input failed with COPY's "extra data after
/// last expected column". The difference is named now, and not retried.
#[test]
fn a_table_with_other_columns_is_named() {
    let t = "weir_test_other_columns";
    fresh(t);
    client()
        .batch_execute(&format!(
            "CREATE TABLE {t} (window_start timestamptz, status integer, hits bigint, \
             PRIMARY KEY (window_start, status))"
        ))
        .unwrap();
    let err = PostgresSink::new(&cfg(t))
        .write(&batch(&[(0, 200, 1, ""), (0, 201, 1, "")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "PostgreSQL table {t} has columns (window_start, status, hits) but the input has \
             (window_start, status, count, note); the table lacks count, note; the input lacks hits"
        )),
        "{err}"
    );
}

/// Issue 10: `weir check` passed a `mysql://` URL for the PostgreSQL sink.
#[test]
fn a_url_of_another_database_is_refused_at_check() {
    let mut c = cfg("t");
    for (url, ok) in [
        ("mysql://root@127.0.0.1/test", false),
        ("postgresql://u:secret@h/db", true),
        ("postgres://h/db", true),
        (URL, true),
        ("127.0.0.1", false),
    ] {
        c.url = url.into();
        let errs = c.validate("sink.pg");
        assert_eq!(errs.is_empty(), ok, "{url}: {errs:?}");
        for e in errs {
            assert!(
                e.to_string()
                    .starts_with("sink.pg.url: expected a PostgreSQL URL"),
                "{e}"
            );
            assert!(!e.to_string().contains("secret"));
        }
    }
}
