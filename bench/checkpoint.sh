#!/usr/bin/env bash
# Cost of checkpoints end to end: the http-status job on N generated CLF lines, without
# checkpoints, with one every second, and with one every 100 ms (ten times the asked rate, as
# a stress), alternating runs so all see the same machine noise. A second job counts per host
# in sliding 1-hour windows every minute, so each checkpoint has real state to write (every
# host of the last hour, in 60 panes). Prints wall time, lines/s, peak RSS, checkpoints taken
# and the last one's size and time per run, and the median throughput ratio per setting.
#
#   bench/checkpoint.sh [LINES] [REPEAT]      default 30000000 lines, 3 runs each
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-30000000}
REPEAT=${2:-3}
source bench/lib.sh
bench_data "$LINES"
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
bench_header "$LINES"
printf "%-12s %-12s %8s %14s %10s %7s  %s\n" job checkpoints wall_s lines_per_s rss_MiB taken checkpoint_summary
WALL=0
one() { # job group_by window interval; sets WALL
  local job=$1 group=$2 window=$3 interval=$4 state=bench/out/ckpt-state
  rm -rf "$state"
  local ck=()
  [ "$interval" != none ] && ck=(--checkpoint-dir "$state" --checkpoint-interval "$interval")
  /usr/bin/time -o "$LOG.time" -f "%e %M" $WEIR run bench/http-status.toml "${ck[@]}" \
    --set "source.logs.path=$DATA" --set "stage.counts.group_by=$group" --set "stage.counts.window=$window" \
    --set "sink.out.path=bench/out/ckpt-$job.jsonl" >/dev/null 2>"$LOG"
  read -r WALL rss <"$LOG.time"
  local taken last
  taken=$(grep -o ': [0-9]* taken' "$LOG" | grep -o '[0-9]*' || echo -)
  last=$(grep -o "last epoch .*" "$LOG" || true)
  awk -v j="$job" -v i="$interval" -v w="$WALL" -v r="$rss" -v l="$LINES" -v t="$taken" -v x="$last" \
    'BEGIN { printf "%-12s %-12s %8.2f %14.0f %10.1f %7s  %s\n", j, i, w, l / w, r / 1024, t, x }'
}
for job in 'status|["status"]|{ type = "tumbling", size = "5m" }' \
  'host_1h|["host"]|{ type = "sliding", size = "1h", slide = "1m" }'; do
  IFS='|' read -r name group window <<<"$job"
  base=() with=() stress=()
  for _ in $(seq "$REPEAT"); do
    one "$name" "$group" "$window" none; base+=("$WALL")
    one "$name" "$group" "$window" 1s; with+=("$WALL")
    one "$name" "$group" "$window" 100ms; stress+=("$WALL")
  done
  b=$(median "${base[@]}") w=$(median "${with[@]}") s=$(median "${stress[@]}")
  awk -v j="$name" -v b="$b" -v w="$w" -v s="$s" \
    'BEGIN { printf "%-12s median wall: %.2f s without, %.2f s every 1 s (ratio %.3f), %.2f s every 100 ms (ratio %.3f)\n", j, b, w, b / w, s, b / s }'
done
rm -rf bench/out/ckpt-state
