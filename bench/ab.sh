#!/usr/bin/env bash
# Two weir binaries side by side on the peers' workloads W1-W3 (bench/w1.toml ...), runs
# interleaved A B A B ... so that the machine's noise falls on both alike. Prints each side's
# median wall time, events/s and peak RSS, B's speed relative to A, and checks that both wrote
# the same output.
#
#   bench/ab.sh BIN_A BIN_B [REPEAT] [LINES]     defaults: 5 runs each, 5000000 lines
#   e.g. bench/ab.sh /tmp/weir-before target/release/weir 7
#   QUERY=1 bench/ab.sh ...   adds `weir query` on a table of every request of the W1 input
#
# Inputs are the peers' generators' (../shared/peers/gen_clf.py, gen_ddos.py, seed 42), made
# once into /tmp/peers_data, as bench/peers.sh makes them.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$(readlink -f "$1"); B=$(readlink -f "$2")
REPEAT=${3:-5}
N=${4:-5000000}
PEERS_DIR=$(readlink -f ../shared/peers)
LABEL=$(awk -v n="$N" 'BEGIN{ if (n%1000000==0) print n/1000000 "m"; else print n/1000 "k" }')
OUT=$(mktemp -d /tmp/weir-ab.XXXXXX)
mkdir -p /tmp/peers_data
source bench/lib.sh   # median

input_of() {
  case $1 in
    w1|w3) f=/tmp/peers_data/clf_$LABEL.log; [ -s "$f" ] || python3 "$PEERS_DIR/gen_clf.py" "$N" 42 > "$f" ;;
    w2) f=/tmp/peers_data/ddos_$LABEL.jsonl; [ -s "$f" ] || python3 "$PEERS_DIR/gen_ddos.py" "$N" 42 > "$f" ;;
  esac
  echo "$f"
}

# run BIN SIDE WORKLOAD INPUT: appends "wall rss_kb" to $OUT/SIDE_WORKLOAD.txt.
run() {
  local bin=$1 side=$2 wl=$3 in=$4 src
  src=$([ "$wl" = w2 ] && echo events || echo logs)
  { /usr/bin/time -f "%e %M" "$bin" run "bench/$wl.toml" --quiet \
      --set "source.$src.path=$in" --set "sink.out.path=$OUT/${side}_$wl.jsonl" ; } 2>&1 \
    | tail -1 >> "$OUT/${side}_$wl.txt"
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $N events per input, $REPEAT runs each, interleaved"
echo "# A = $A"
echo "# B = $B"
printf "%-4s %12s %12s %12s %12s %10s %10s %8s\n" wl "A median s" "B median s" "A events/s" "B events/s" "A RSS MiB" "B RSS MiB" "B/A"
for wl in ${WORKLOADS:-w1 w2 w3}; do
  IN=$(input_of "$wl")
  for _ in $(seq "$REPEAT"); do
    run "$A" a "$wl" "$IN"
    run "$B" b "$wl" "$IN"
  done
  # Row order may differ between runs of several workers: compare sorted.
  if ! cmp -s <(sort "$OUT/a_$wl.jsonl") <(sort "$OUT/b_$wl.jsonl"); then
    echo "$wl: OUTPUTS DIFFER ($OUT/a_$wl.jsonl, $OUT/b_$wl.jsonl)" >&2
    exit 1
  fi
  ma=$(median $(cut -d' ' -f1 "$OUT/a_$wl.txt")); mb=$(median $(cut -d' ' -f1 "$OUT/b_$wl.txt"))
  ra=$(median $(cut -d' ' -f2 "$OUT/a_$wl.txt")); rb=$(median $(cut -d' ' -f2 "$OUT/b_$wl.txt"))
  awk -v wl="$wl" -v n="$N" -v ma="$ma" -v mb="$mb" -v ra="$ra" -v rb="$rb" 'BEGIN {
    printf "%-4s %12.2f %12.2f %12.0f %12.0f %10.1f %10.1f %7.3fx\n", wl, ma, mb, n / ma, n / mb, ra / 1024, rb / 1024, ma / mb }'
done
# `weir query` on a Parquet table of every request of the W1 input (QUERY=1): SQL planning
# and DataFusion's execution, which the release profile builds at lower opt-levels.
if [ "${QUERY:-0}" = 1 ]; then
  T=$OUT/q && mkdir -p "$T"
  "$A" run bench/q-table.toml --quiet --set "source.logs.path=$(input_of w1)" \
    --set "sink.requests.path=$T/requests" >/dev/null
  for q in "SELECT status, count(*) AS n, sum(bytes) AS b FROM requests GROUP BY status ORDER BY status" \
           "SELECT path, count(*) AS n FROM requests GROUP BY path ORDER BY n DESC, path LIMIT 10" \
           "SELECT count(DISTINCT host) AS hosts, avg(bytes) AS b FROM requests WHERE status < 400"; do
    : > "$OUT/qa.txt"; : > "$OUT/qb.txt"
    for _ in $(seq "$REPEAT"); do
      for side in a b; do
        bin=$([ $side = a ] && echo "$A" || echo "$B")
        s=$(date +%s%N)
        "$bin" query --tables "$T" --format csv "$q" > "$OUT/q_$side.csv"
        echo $(( ($(date +%s%N) - s) / 1000000 )) >> "$OUT/q$side.txt"
      done
    done
    cmp -s "$OUT/q_a.csv" "$OUT/q_b.csv" || { echo "query results differ: $q" >&2; exit 1; }
    ma=$(median $(cat "$OUT/qa.txt")); mb=$(median $(cat "$OUT/qb.txt"))
    awk -v q="$q" -v ma="$ma" -v mb="$mb" 'BEGIN { printf "query %8d ms %8d ms %7.3fx  %s\n", ma, mb, ma / mb, q }'
  done
fi
echo "# outputs identical; all times in $OUT"
