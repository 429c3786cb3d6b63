#!/usr/bin/env bash
# weir side by side with the peers of ../shared/peers (Spark Structured Streaming, Flink SQL,
# Bytewax, and the pure-Python reference) on the W1 workload, same generated input, one
# session, interleaved. Checks that every output equals the reference, then prints wall time,
# events/s, peak RSS and weir's speed-up over each.
#
#   bench/peers.sh [OUTDIR] [LINES]          default /tmp/weir_peers 5000000
#   PEERS="ref bytewax flink spark" REPEAT=2 PEERS_VENV=/tmp/peers_venv bench/peers.sh
#
# The peers need their virtualenvs first: PEERS_VENV=/tmp/peers_venv bash ../shared/peers/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS_DIR=$(readlink -f ../shared/peers)
OUT=$(mkdir -p "${1:-/tmp/weir_peers}" && readlink -f "${1:-/tmp/weir_peers}")
N=${2:-5000000}
PEERS=${PEERS:-"ref flink spark"}
REPEAT=${REPEAT:-1}
export PEERS_VENV=${PEERS_VENV:-/tmp/peers_venv}
LABEL=$(awk -v n="$N" 'BEGIN{ if (n%1000000==0) print n/1000000 "m"; else print n/1000 "k" }')
IN=/tmp/peers_data/clf_$LABEL.log
mkdir -p /tmp/peers_data bench/out
[ -s "$IN" ] || python3 "$PEERS_DIR/gen_clf.py" "$N" 42 > "$IN"
cargo build --release -q

run_weir() {
  local t
  t=$( { /usr/bin/time -f "%e %M %U %S" target/release/weir run bench/w1.toml --quiet \
        --set "source.logs.path=$IN" --set "sink.out.path=$OUT/weir_w1.jsonl" ; } 2>&1 | tail -1)
  echo "$t" >> "$OUT/weir_times.txt"
  # to the peers' CSV contract: window_end_ms,status,count, sorted
  python3 - "$OUT/weir_w1.jsonl" "$OUT/weir_w1_clf_$LABEL.csv" <<'PY'
import json, sys, datetime
rows = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    end = datetime.datetime.fromisoformat(r["window_end"].replace("Z", "+00:00"))
    rows.append((int(end.timestamp() * 1000), r["status"], r["count"]))
with open(sys.argv[2], "w") as f:
    f.write("window_end_ms,status,count\n")
    for r in sorted(rows):
        f.write(",".join(map(str, r)) + "\n")
PY
}

rm -f "$OUT/weir_times.txt"
for _ in $(seq "$REPEAT"); do
  run_weir
  for p in $PEERS; do
    bash "$PEERS_DIR/run_peer.sh" "$p" w1 "$IN" "$OUT" >/dev/null || echo "peer $p failed" >&2
  done
done

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); input $IN ($N lines)"
ref=$OUT/ref_w1_clf_$LABEL.csv
if [ -s "$ref" ]; then
  for f in "$OUT"/*_w1_clf_"$LABEL".csv; do
    [ "$f" = "$ref" ] && continue
    if cmp -s "$ref" "$f"; then echo "agree with ref: $(basename "$f")"; else echo "DIFFER from ref: $(basename "$f")"; fi
  done
fi
best_weir=$(sort -n "$OUT/weir_times.txt" | head -1)
python3 - "$OUT/results.tsv" "$N" "$best_weir" "$LABEL" <<'PY'
import csv, sys
path, n, weir, label = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4]
w_wall, w_rss = float(weir[0]), int(weir[1])
print(f"{'system':10} {'best wall s':>11} {'events/s':>12} {'excl. start-up':>15} {'peak RSS MiB':>13} {'weir faster':>12}")
print(f"{'weir':10} {w_wall:11.2f} {n / w_wall:12.0f} {'':>15} {w_rss / 1024:13.1f} {'':>12}")
best = {}
for r in csv.DictReader(open(path), delimiter="\t"):
    if r["workload"] != "w1" or not r["input"].endswith(f"clf_{label}"):
        continue
    if r["peer"] not in best or float(r["wall_s"]) < float(best[r["peer"]]["wall_s"]):
        best[r["peer"]] = r
for p, r in sorted(best.items()):
    wall = float(r["wall_s"])
    net = r["ev_per_s_net"]
    print(f"{p:10} {wall:11.2f} {n / wall:12.0f} {net:>15} {int(r['tree_peak_rss_kb']) / 1024:13.1f} {wall / w_wall:11.1f}x")
PY
