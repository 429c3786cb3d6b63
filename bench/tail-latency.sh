#!/usr/bin/env bash
# From a DDOS message being written to its alert leaving weir, when the messages come through
# standard input and when weir follows the file they are appended to (type = "tail"):
# `weir gen ddos` writes RATE messages/s (default 20 000) for SECONDS (default 20) with event
# times on the wall clock; latency is fired_at − window_end (the newest message of the
# alert's window), millisecond resolution, as in bench/ddos-latency.sh.
#
#   bench/tail-latency.sh [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-20000}
SECS=${2:-20}
WEIR=${WEIR:-target/release/weir}
[ -x "$WEIR" ] || cargo build --release -q
mkdir -p bench/out
COUNT=$((RATE * SECS))
GEN=($WEIR gen ddos --rate "$RATE" --count "$COUNT" --targets 1000 --attack-share 0.02)
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# $COUNT messages at $RATE/s, binary $WEIR"

report() { # label alerts-file
  python3 - "$1" "$2" <<'PY'
import json, sys, datetime
def ms(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
lat = sorted(ms(a["fired_at"]) - ms(a["window_end"]) for a in map(json.loads, open(sys.argv[2])))
pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
print(f"{sys.argv[1]:>6}: alerts {len(lat)}; latency ms p50 {pct(50):.0f}  p99 {pct(99):.0f}  max {lat[-1]:.0f}")
PY
}

rm -f bench/out/alerts-stdin.jsonl bench/out/alerts-tail.jsonl bench/out/.alerts-*.weir -r
"${GEN[@]}" | $WEIR run bench/ddos-follow.toml --quiet --set sink.alerts.path=bench/out/alerts-stdin.jsonl
report stdin bench/out/alerts-stdin.jsonl

FOLLOWED=bench/out/followed.jsonl
rm -f "$FOLLOWED"; touch "$FOLLOWED"
$WEIR run bench/ddos-follow.toml --quiet --set sink.alerts.path=bench/out/alerts-tail.jsonl \
  --set 'source.events.type="tail"' --set "source.events.path=$FOLLOWED" &
RUN=$!
sleep 0.5
"${GEN[@]}" --out "$FOLLOWED"
sleep 1
kill -TERM $RUN   # a graceful stop: the last alerts are written
wait $RUN
report tail bench/out/alerts-tail.jsonl
