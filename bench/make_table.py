"""Writes a weir-style Parquet table of many small files, as a long run with frequent
checkpoints leaves it: bench/tables.sh uses it to time `weir query` before and after
`weir compact`.

    python3 bench/make_table.py DIR FILES [ROWS_PER_FILE]
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

root, files = sys.argv[1], int(sys.argv[2])
per_file = int(sys.argv[3]) if len(sys.argv) > 3 else 20
hours = max(1, files // 100)
os.makedirs(root, exist_ok=True)
schema = pa.schema([("window_start", pa.timestamp("ms", tz="UTC")), ("window_end", pa.timestamp("ms", tz="UTC")),
                    ("status", pa.uint16()), ("count", pa.int64()), ("bytes", pa.int64())])
base = 1_700_000_000_000 - 1_700_000_000_000 % 3_600_000
for f in range(files):
    h = f % hours
    start = base + h * 3_600_000 + (f // hours) * 1000
    ts = [start] * per_file
    t = pa.table([pa.array(ts, pa.timestamp("ms", tz="UTC")), pa.array([s + 300_000 for s in ts], pa.timestamp("ms", tz="UTC")),
                  pa.array([200 + i % 10 for i in range(per_file)], pa.uint16()), pa.array([1] * per_file, pa.int64()),
                  pa.array([100] * per_file, pa.int64())], schema=schema)
    hour_ms = base + h * 3_600_000
    import datetime
    d = datetime.datetime.fromtimestamp(hour_ms / 1000, datetime.timezone.utc)
    part = os.path.join(root, f"dt={d:%Y-%m-%d}", f"hour={d:%H}")
    os.makedirs(part, exist_ok=True)
    pq.write_table(t, os.path.join(part, f"part-{f:010d}-0001.parquet"), compression="zstd")
    old = 1_600_000_000  # old enough for `weir compact --min-age 1h`
    os.utime(os.path.join(part, f"part-{f:010d}-0001.parquet"), (old, old))
meta = {"format": 1, "name": os.path.basename(root.rstrip("/")),
        "columns": [["window_start", 'Timestamp(ms, "UTC")'], ["window_end", 'Timestamp(ms, "UTC")'],
                    ["status", "UInt16"], ["count", "Int64"], ["bytes", "Int64"]],
        "partition_field": "window_start", "partition": "hour"}
with open(os.path.join(root, "_weir_table.json"), "w") as fh:
    json.dump(meta, fh)
