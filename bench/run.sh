#!/usr/bin/env bash
# End-to-end benchmark of the http-status job: generates N CLF lines once (bench/data), then
# runs weir on them with a tumbling and a sliding window, each REPEAT times, on one core
# (taskset -c 0) and on all cores. Prints lines/s, MiB/s, wall time and peak RSS per run and
# the median per configuration.
#
#   bench/run.sh [LINES] [REPEAT]       default 10000000 lines, 3 runs each
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-10000000}
REPEAT=${2:-3}
source bench/lib.sh
bench_data "$LINES"
bench_header "$LINES"
printf "%-28s %-6s %10s %14s %10s %12s\n" config cores wall_s lines_per_s MiB_per_s peak_rss_MiB
run() { # name cores window...
  local name=$1 cores=$2; shift 2
  local walls=()
  for _ in $(seq "$REPEAT"); do
    local pin=()
    [ "$cores" = 1 ] && pin=(taskset -c 0)
    local out
    out=$( { /usr/bin/time -f "%e %M" "${pin[@]}" $WEIR run bench/http-status.toml --quiet \
      --set "source.logs.path=$DATA" --set "stage.counts.window=$*" >/dev/null; } 2>&1 | tail -1)
    local wall=${out% *} rss=${out#* }
    walls+=("$wall")
    awk -v n="$name" -v c="$cores" -v w="$wall" -v r="$rss" -v l="$LINES" -v b="$BYTES" \
      'BEGIN { printf "%-28s %-6s %10.2f %14.0f %10.1f %12.1f\n", n, c, w, l / w, b / 1048576 / w, r / 1024 }'
  done
  local med
  med=$(median "${walls[@]}")
  awk -v n="$name" -v c="$cores" -v w="$med" -v l="$LINES" -v b="$BYTES" \
    'BEGIN { printf "%-28s %-6s %10.2f %14.0f %10.1f %12s\n", n " (median)", c, w, l / w, b / 1048576 / w, "" }'
}
run tumbling_5m 1 '{ type = "tumbling", size = "5m" }'
run sliding_5m_every_1s 1 '{ type = "sliding", size = "5m", slide = "1s" }'
run tumbling_5m all '{ type = "tumbling", size = "5m" }'
run sliding_5m_every_1s all '{ type = "sliding", size = "5m", slide = "1s" }'
