use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, UInt64Type};
use arrow_array::{Array, Int64Array, StringArray, UInt64Array};
use weir_core::{Message, Port};

use super::*;

fn cfg(toml_text: &str) -> EnrichConfig {
    toml::from_str(toml_text).unwrap()
}

fn connections() -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "src_bytes",
            Arc::new(UInt64Array::from(vec![181, 239, u64::MAX, 0])) as ArrayRef,
        ),
        (
            "dst_bytes",
            Arc::new(UInt64Array::from(vec![5450, 486, 1, 0])) as _,
        ),
        (
            "protocol_type",
            Arc::new(StringArray::from(vec!["tcp", "udp", "tcp", "icmp"])) as _,
        ),
        ("count", Arc::new(Int64Array::from(vec![8, 0, 2, 4])) as _),
    ])
    .unwrap()
}

fn run(e: &mut Enrich, b: &RecordBatch) -> (Vec<RecordBatch>, Vec<RecordBatch>) {
    let mut out = Emitter::default();
    e.on_batch(b, &mut out).unwrap();
    let (mut main, mut dead) = (Vec::new(), Vec::new());
    for (port, m) in out.drain() {
        if let Message::Data(b) = m {
            if port == Port::Main {
                main.push(b)
            } else {
                dead.push(b)
            }
        }
    }
    (main, dead)
}

#[test]
fn fields_are_added_in_order_and_read_earlier_ones() {
    // Written out of alphabetical order: the order of the file is the order of evaluation.
    let c = cfg(
        r#"fields = { total_bytes = "src_bytes + dst_bytes", is_tcp = "protocol_type = 'tcp'", kib = "total_bytes / 1024" }"#,
    );
    assert_eq!(
        c.fields.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["total_bytes", "is_tcp", "kib"]
    );
    assert_eq!(
        c.required_fields(),
        ["dst_bytes", "protocol_type", "src_bytes"]
    );
    let b = connections().slice(0, 2);
    let mut e = Enrich::new(&c, b.schema(), "stage.e").unwrap();
    let names: Vec<_> = e
        .output_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "src_bytes",
            "dst_bytes",
            "protocol_type",
            "count",
            "total_bytes",
            "is_tcp",
            "kib"
        ]
    );
    let (main, dead) = run(&mut e, &b);
    assert!(dead.is_empty());
    let m = &main[0];
    assert_eq!(
        m.column(4).as_primitive::<UInt64Type>().values(),
        &[5631, 725]
    );
    assert_eq!(
        m.column(5).as_boolean().iter().collect::<Vec<_>>(),
        [Some(true), Some(false)]
    );
    // An unsigned field with a signed literal computes in Int64 (weir-expr's rule).
    assert_eq!(m.column(6).as_primitive::<Int64Type>().values(), &[5, 0]);
}

#[test]
fn a_field_of_the_input_is_replaced_where_it_stands() {
    let c = cfg(r#"fields = { count = "count * 10", protocol_type = "upper(protocol_type)" }"#);
    let b = connections().slice(0, 2);
    let mut e = Enrich::new(&c, b.schema(), "stage.e").unwrap();
    assert_eq!(e.output_schema().fields().len(), 4);
    let (main, _) = run(&mut e, &b);
    assert_eq!(
        main[0].column(3).as_primitive::<Int64Type>().values(),
        &[80, 0]
    );
    assert_eq!(main[0].column(2).as_string::<i32>().value(0), "TCP");
}

#[test]
fn a_record_whose_field_fails_is_a_dead_letter_and_the_rest_go_on() {
    // Row 1 divides by a zero count; row 2 overflows a u64 sum.
    let c = cfg(r#"fields = { total_bytes = "src_bytes + dst_bytes", per = "100 / count" }"#);
    let b = connections();
    let mut e = Enrich::new(&c, b.schema(), "stage.e").unwrap();
    let (main, dead) = run(&mut e, &b);
    assert_eq!(main[0].num_rows(), 2);
    assert_eq!(
        main[0].column(0).as_primitive::<UInt64Type>().values(),
        &[181, 0]
    );
    let reasons = dead[0].column_by_name("reason").unwrap().as_string::<i32>();
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons
            .value(0)
            .starts_with("per: evaluating `100 / count`"),
        "{}",
        reasons.value(0)
    );
    assert!(
        reasons
            .value(1)
            .starts_with("total_bytes: evaluating `src_bytes + dst_bytes`"),
        "{}",
        reasons.value(1)
    );
}

#[test]
fn errors_name_the_field() {
    let c = cfg(r#"fields = { a = "nope + 1", b = "src_bytes +" }"#);
    let errs: Vec<String> = c
        .validate("stage.e")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("stage.e.fields.b: "), "{}", errs[0]);
    let errs = Enrich::new(
        &cfg(r#"fields = { a = "nope + 1" }"#),
        connections().schema(),
        "stage.e",
    )
    .err()
    .unwrap();
    assert!(
        errs[0].to_string().starts_with("stage.e.fields.a: "),
        "{}",
        errs[0]
    );
    assert!(errs[0].to_string().contains("nope"), "{}", errs[0]);
    let empty = cfg("fields = {}").validate("stage.e");
    assert_eq!(
        empty[0].to_string(),
        "stage.e.fields: expected at least one field = \"SQL expression\""
    );
}
