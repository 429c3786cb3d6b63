"""Reads a weir Parquet table with DuckDB and with pyarrow and prints what each sees.

    python3 tests/interop/parquet_readers.py TABLE_DIR

Prints one JSON object: for each reader the row count, sum(count), sum(bytes), the type of
window_start, and the distinct dt partitions. crates/cli/tests/interop.rs compares it with
`weir query`.
"""
import json
import sys

import duckdb
import pyarrow.dataset as ds
import pyarrow.compute as pc

table = sys.argv[1]

con = duckdb.connect()
rows, sum_count, sum_bytes, ws_type = con.execute(
    f"""SELECT count(*), sum("count"), sum(bytes), any_value(typeof(window_start))
        FROM read_parquet('{table}/**/*.parquet', hive_partitioning = true)"""
).fetchone()
dts = [r[0] for r in con.execute(
    f"SELECT DISTINCT dt FROM read_parquet('{table}/**/*.parquet', hive_partitioning = true) ORDER BY 1"
).fetchall()]
duck = {"rows": rows, "sum_count": int(sum_count), "sum_bytes": int(sum_bytes),
        "window_start": ws_type, "dt": [str(d) for d in dts]}

t = ds.dataset(table, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
arrow = {"rows": t.num_rows, "sum_count": pc.sum(t["count"]).as_py(),
         "sum_bytes": pc.sum(t["bytes"]).as_py(), "window_start": str(t.schema.field("window_start").type),
         "dt": sorted({str(v) for v in t["dt"].to_pylist()})}

print(json.dumps({"duckdb": duck, "pyarrow": arrow}))
