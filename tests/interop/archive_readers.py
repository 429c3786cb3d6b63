"""Reads a weir archive (gzip JSON lines and gzip raw lines) with DuckDB and Python's gzip
module; prints what each saw as JSON. Usage: archive_readers.py JSONL_ARCHIVE LINES_ARCHIVE"""

import glob
import gzip
import json
import sys
import zlib

import duckdb


def members(path):
    """Number of gzip members in a file."""
    data, n = open(path, "rb").read(), 0
    while data:
        d = zlib.decompressobj(31)
        d.decompress(data)
        data, n = d.unused_data, n + 1
    return n


jsonl, lines = sys.argv[1], sys.argv[2]
jfiles = sorted(glob.glob(f"{jsonl}/**/*.jsonl.gz", recursive=True))
lfiles = sorted(glob.glob(f"{lines}/**/*.log.gz", recursive=True))
py_rows, py_bytes = 0, 0
for f in jfiles:
    with gzip.open(f, "rt") as fh:
        for line in fh:
            py_rows += 1
            py_bytes += json.loads(line)["bytes"] or 0
con = duckdb.connect()
d_rows, d_bytes, d_hours = con.sql(
    f"SELECT count(*), sum(bytes), count(DISTINCT hour) "
    f"FROM read_json('{jsonl}/**/*.jsonl.gz', hive_partitioning = true)"
).fetchall()[0]
d_lines = con.sql(
    f"SELECT count(*) FROM read_csv('{lines}/**/*.log.gz', header = false, "
    f"columns = {{'line': 'VARCHAR'}}, delim = chr(1), quote = '', escape = '')"
).fetchall()[0][0]
with_raw = [l for f in lfiles for l in gzip.open(f, "rt").read().splitlines()]
print(json.dumps({
    "gzip": {"rows": py_rows, "sum_bytes": py_bytes, "lines": len(with_raw)},
    "duckdb": {"rows": d_rows, "sum_bytes": int(d_bytes), "hours": d_hours, "lines": d_lines},
    "most_members": max(members(f) for f in jfiles + lfiles),
    "files": len(jfiles) + len(lfiles),
}))
