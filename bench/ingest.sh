#!/usr/bin/env bash
# HTTP ingest end to end on loopback: `weir gen clicks --to` posts NDJSON batches of 8192
# clicks (~1.5 MiB) to a pipeline's http source, which counts them per minute and action.
#  1. CLIENTS concurrent clients (default 1 and 2), each sending EVENTS/CLIENTS clicks as
#     fast as the endpoint takes them: events/s and MiB/s from the first request to the
#     last answer, peak RSS of weir;
#  2. overload: the same pipeline taking at most 100000 records/s, with 4 clients sending
#     EVENTS and then 2*EVENTS clicks: weir's peak RSS must stay flat (the queue is bounded,
#     64 MiB; clients get 429 and wait, column `waits`) and the counts must add up to every
#     click sent.
# The client runs on the same 2 cores, so the figures are for client and server together.
# Windows are in processing time: concurrent clients interleave their event times, and in
# event time the rows of one behind the other's watermark would be late, not lost.
#
#   bench/ingest.sh [EVENTS]        default 2000000
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
cargo build --release -q
WEIR=target/release/weir
mkdir -p bench/out
PORT=${PORT:-17878}
URL=http://127.0.0.1:$PORT/ingest/clicks
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

pipeline() { # file, extra stage lines
  cat > "$1" <<TOML
[server]
listen = "127.0.0.1:$PORT"

[source.clicks]
type = "http"
stop_when_idle = "2s"
format = { type = "json", fields = [
  { name = "timestamp", type = "timestamp", required = true },
  { name = "user_id", type = "string" },
  { name = "action", type = "string", required = true },
] }

[stage.per_action]
type = "aggregate"
input = "clicks"
window = { type = "tumbling", size = "1m" }
group_by = ["action"]
aggregates = [{ fn = "count" }]

[sink.counts]
type = "jsonl"
input = "per_action"
path = "bench/out/ingest_counts.jsonl"
$2
TOML
}
pipeline bench/out/ingest.toml ""
# Overload: the source node takes at most 100000 records/s (`rate`), far below what the
# clients send.
sed 's/^type = "http"$/type = "http"\nrate = 100000/' bench/out/ingest.toml > bench/out/ingest_slow.toml

printf "%-26s %8s %8s %12s %9s %9s %7s\n" run clients wall_s events_per_s MiB_per_s rss_MiB waits
one() { # name, pipeline, clients, events
  local name=$1 file=$2 c=$3 n=$4
  rm -f bench/out/ingest_counts.jsonl
  /usr/bin/time -f "%e %M" -o bench/out/ingest_time $WEIR run "$file" --quiet 2> bench/out/ingest_weir.log &
  local weir=$!
  for _ in $(seq 100); do grep -q "serving at" bench/out/ingest_weir.log 2>/dev/null && break; sleep 0.1; done
  local t0 pids=() per=$((n / c)) waits=0
  t0=$(date +%s.%N)
  for i in $(seq "$c"); do
    $WEIR gen clicks -n "$per" --seed "$i" --to "$URL" 2> "bench/out/ingest_gen_$i.log" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  local t1 bytes
  t1=$(date +%s.%N)
  wait $weir
  for i in $(seq "$c"); do
    w=$(grep -o 'saturated [0-9]*' "bench/out/ingest_gen_$i.log" | cut -d' ' -f2 || true)
    waits=$((waits + ${w:-0}))
  done
  local got
  got=$(python3 -c 'import json,sys; print(sum(json.loads(l)["count"] for l in open(sys.argv[1])))' bench/out/ingest_counts.jsonl)
  [ "$got" = "$((per * c))" ] || { echo "# COUNTED $got OF $((per * c)) CLICKS"; exit 1; }
  bytes=$($WEIR gen clicks -n "$per" --seed 1 | wc -c)
  read -r _ rss < bench/out/ingest_time
  awk -v n="$name" -v c="$c" -v t0="$t0" -v t1="$t1" -v e="$((per * c))" -v b="$((bytes * c))" -v r="$rss" -v w="$waits" \
    'BEGIN { w_s = t1 - t0; printf "%-26s %8d %8.2f %12.0f %9.1f %9.1f %7d\n", n, c, w_s, e / w_s, b / 1048576 / w_s, r / 1024, w }'
}
for c in ${CLIENTS:-1 2}; do one "count per minute" bench/out/ingest.toml "$c" "$N"; done
one "overload: 100k/s pipeline" bench/out/ingest_slow.toml 4 "$N"
one "overload: same, 2x events" bench/out/ingest_slow.toml 4 "$((N * 2))"
echo "# every click sent was counted once in every run"
