#!/usr/bin/env bash
# `weir query` latency over a table of many small files, before and after `weir compact`.
# The table (FILES files of 20 rows over FILES/100 hour partitions) is written by
# bench/make_table.py (pyarrow). Prints each query's wall time and the medians.
#
#   bench/tables.sh [FILES] [REPEAT]      default 10000 files, 5 runs each
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:-10000}
REPEAT=${2:-5}
cargo build --release -q
WEIR=$PWD/target/release/weir
DIR=bench/out/tables
rm -rf "$DIR" && mkdir -p "$DIR"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores; writing $FILES files ..." >&2
python3 bench/make_table.py "$DIR/many" "$FILES"
SQL="SELECT status, sum(count) AS n, sum(bytes) AS b FROM many GROUP BY status ORDER BY status"
FIRST=$($WEIR query --tables "$DIR" --format csv "SELECT min(dt) AS d FROM many" | tail -1)
PRUNED="SELECT sum(count) AS n FROM many WHERE dt = '$FIRST' AND hour = '00'"
median() { printf "%s\n" "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
timed() { # label sql
  local ts=()
  for _ in $(seq "$REPEAT"); do
    local s e
    s=$(date +%s%N)
    $WEIR query --tables "$DIR" --format csv "$2" >/dev/null
    e=$(date +%s%N)
    ts+=("$(( (e - s) / 1000000 ))")
  done
  printf "%-34s %s ms (median of %s: %s)\n" "$1" "$(median "${ts[@]}")" "$REPEAT" "${ts[*]}"
}
$WEIR tables --tables "$DIR" | head -1
timed "full scan, $FILES files" "$SQL"
timed "one partition (dt, hour filter)" "$PRUNED"
s=$(date +%s%N)
$WEIR compact many --tables "$DIR" --min-age 1h
echo "compaction: $(( ($(date +%s%N) - s) / 1000000 )) ms"
$WEIR tables --tables "$DIR" | head -1
timed "full scan, after compaction" "$SQL"
timed "one partition, after compaction" "$PRUNED"
