#!/usr/bin/env bash
# End-to-end benchmark of the http-status job: generates N CLF lines once (bench/data), then
# runs weir on them with a tumbling and a sliding window, each REPEAT times, on one core
# (taskset -c 0), and on all cores with one parser thread (--workers 1) and with the default
# (a parser thread per core). Runs of the configurations are interleaved, so a noisy minute
# hits them alike. Prints lines/s, MiB/s, wall time and peak RSS per run and the median per
# configuration.
#
#   bench/run.sh [LINES] [REPEAT]       default 10000000 lines, 3 runs each
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-10000000}
REPEAT=${2:-3}
source bench/lib.sh
bench_data "$LINES"
bench_header "$LINES"
printf "%-28s %-6s %-7s %10s %14s %10s %12s\n" config cores workers wall_s lines_per_s MiB_per_s peak_rss_MiB
declare -A WALLS
once() { # name cores workers window
  local name=$1 cores=$2 workers=$3 window=$4 pin=() wflag=() out
  [ "$cores" = 1 ] && pin=(taskset -c 0)
  [ "$workers" = default ] || wflag=(--workers "$workers")
  out=$( { /usr/bin/time -f "%e %M" "${pin[@]}" $WEIR run bench/http-status.toml --quiet "${wflag[@]}" \
    --set "source.logs.path=$DATA" --set "stage.counts.window=$window" >/dev/null; } 2>&1 | tail -1)
  local wall=${out% *} rss=${out#* }
  WALLS["$name $cores $workers"]+="$wall "
  awk -v n="$name" -v c="$cores" -v k="$workers" -v w="$wall" -v r="$rss" -v l="$LINES" -v b="$BYTES" \
    'BEGIN { printf "%-28s %-6s %-7s %10.2f %14.0f %10.1f %12.1f\n", n, c, k, w, l / w, b / 1048576 / w, r / 1024 }'
}
TUMBLING='{ type = "tumbling", size = "5m" }'
SLIDING='{ type = "sliding", size = "5m", slide = "1s" }'
for _ in $(seq "$REPEAT"); do
  for w in tumbling_5m sliding_5m_every_1s; do
    win=$TUMBLING; [ $w = tumbling_5m ] || win=$SLIDING
    once $w 1 default "$win"
    once $w all 1 "$win"
    once $w all default "$win"
  done
done
for key in "tumbling_5m 1 default" "tumbling_5m all 1" "tumbling_5m all default" \
  "sliding_5m_every_1s 1 default" "sliding_5m_every_1s all 1" "sliding_5m_every_1s all default"; do
  read -r name cores workers <<<"$key"
  # shellcheck disable=SC2086
  med=$(median ${WALLS[$key]})
  awk -v n="$name" -v c="$cores" -v k="$workers" -v w="$med" -v l="$LINES" -v b="$BYTES" \
    'BEGIN { printf "%-28s %-6s %-7s %10.2f %14.0f %10.1f %12s\n", n " (median)", c, k, w, l / w, b / 1048576 / w, "" }'
done
