#!/usr/bin/env bash
# weir side by side with the peers of ../shared/peers (Spark Structured Streaming, Flink SQL,
# Bytewax, and the pure-Python reference) on the workloads W1 (CLF status counts, tumbling
# 5 min), W2 (JSON DDOS messages, sliding 5 min / 1 min counts per target, >= 10) and W3
# (CLF, the 5 most requested paths per 10 min sliding by 1 min), same
# generated input, one session, interleaved. Checks that every output equals the reference,
# then prints wall time, events/s, peak RSS and weir's speed-up over each, per workload.
#
#   bench/peers.sh [OUTDIR] [LINES]          default /tmp/weir_peers 5000000
#   WORKLOADS="w1 w2 w3" PEERS="ref bytewax flink spark" REPEAT=2 PEERS_VENV=/tmp/peers_venv bench/peers.sh
#
# The peers need their virtualenvs first: PEERS_VENV=/tmp/peers_venv bash ../shared/peers/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS_DIR=$(readlink -f ../shared/peers)
OUT=$(mkdir -p "${1:-/tmp/weir_peers}" && readlink -f "${1:-/tmp/weir_peers}")
N=${2:-5000000}
PEERS=${PEERS:-"ref flink spark"}
WORKLOADS=${WORKLOADS:-"w1 w2 w3"}
REPEAT=${REPEAT:-1}
export PEERS_VENV=${PEERS_VENV:-/tmp/peers_venv}
LABEL=$(awk -v n="$N" 'BEGIN{ if (n%1000000==0) print n/1000000 "m"; else print n/1000 "k" }')
mkdir -p /tmp/peers_data bench/out
cargo build --release -q

input_of() {  # the workload's input file, generated once
  case $1 in
    w1|w3) f=/tmp/peers_data/clf_$LABEL.log; [ -s "$f" ] || python3 "$PEERS_DIR/gen_clf.py" "$N" 42 > "$f" ;;
    w2) f=/tmp/peers_data/ddos_$LABEL.jsonl; [ -s "$f" ] || python3 "$PEERS_DIR/gen_ddos.py" "$N" 42 > "$f" ;;
  esac
  echo "$f"
}

run_weir() {  # run_weir WORKLOAD INPUT
  local wl=$1 in=$2 src t name
  src=$([ "$wl" = w2 ] && echo events || echo logs)
  t=$( { /usr/bin/time -f "%e %M %U %S" target/release/weir run "bench/$wl.toml" --quiet \
        --set "source.$src.path=$in" --set "sink.out.path=$OUT/weir_$wl.jsonl" ; } 2>&1 | tail -1)
  echo "$t" >> "$OUT/weir_${wl}_times.txt"
  name=$(basename "$in"); name=${name%.*}
  # to the peers' CSV contract: window_end_ms,KEY,count, sorted as spec.write_csv sorts
  python3 - "$wl" "$OUT/weir_$wl.jsonl" "$OUT/weir_${wl}_$name.csv" <<'PY'
import json, sys, datetime
wl, src, dst = sys.argv[1:]
keys = {"w1": ["status"], "w2": ["target_ip"], "w3": ["rank", "path"]}[wl]
header = {"w1": "window_end_ms,status,count", "w2": "window_end_ms,target_ip,count",
          "w3": "window_end_ms,rank,path,count"}[wl]
rows = []
for line in open(src):
    r = json.loads(line)
    end = datetime.datetime.fromisoformat(r["window_end"].replace("Z", "+00:00"))
    rows.append((int(end.timestamp() * 1000), *[r[k] for k in keys], r["count"]))
with open(dst, "w") as f:
    f.write(header + "\n")
    for r in sorted(rows):
        f.write(",".join(map(str, r)) + "\n")
PY
}

for wl in $WORKLOADS; do
  rm -f "$OUT/weir_${wl}_times.txt"
  IN=$(input_of "$wl")
  for _ in $(seq "$REPEAT"); do
    run_weir "$wl" "$IN"
    for p in $PEERS; do
      bash "$PEERS_DIR/run_peer.sh" "$p" "$wl" "$IN" "$OUT" >/dev/null || echo "peer $p failed on $wl" >&2
    done
  done
done

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $N lines per input"
for wl in $WORKLOADS; do
  IN=$(input_of "$wl"); name=$(basename "$IN"); name=${name%.*}
  echo "## $wl on $IN"
  ref=$OUT/ref_${wl}_$name.csv
  if [ -s "$ref" ]; then
    for f in "$OUT"/*_"${wl}_$name".csv; do
      [ "$f" = "$ref" ] && continue
      if cmp -s "$ref" "$f"; then echo "agree with ref: $(basename "$f")"; else echo "DIFFER from ref: $(basename "$f")"; fi
    done
  fi
  best_weir=$(sort -n "$OUT/weir_${wl}_times.txt" | head -1)
  python3 - "$OUT/results.tsv" "$N" "$best_weir" "$wl" "$name" <<'PY'
import csv, sys
path, n, weir, wl, name = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4], sys.argv[5]
w_wall, w_rss = float(weir[0]), int(weir[1])
print(f"{'system':10} {'best wall s':>11} {'events/s':>12} {'excl. start-up':>15} {'peak RSS MiB':>13} {'weir faster':>12}")
print(f"{'weir':10} {w_wall:11.2f} {n / w_wall:12.0f} {'':>15} {w_rss / 1024:13.1f} {'':>12}")
best = {}
for r in csv.DictReader(open(path), delimiter="\t"):
    if r["workload"] != wl or not r["input"].endswith(name):
        continue
    if r["peer"] not in best or float(r["wall_s"]) < float(best[r["peer"]]["wall_s"]):
        best[r["peer"]] = r
for p, r in sorted(best.items()):
    wall = float(r["wall_s"])
    net = r["ev_per_s_net"]
    print(f"{p:10} {wall:11.2f} {n / wall:12.0f} {net:>15} {int(r['tree_peak_rss_kb']) / 1024:13.1f} {wall / w_wall:11.1f}x")
PY
done
