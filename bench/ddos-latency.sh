#!/usr/bin/env bash
# Latency of the ddos-alert job: messages generated at RATE/s (default 100 000) for SECONDS
# (default 30), filtered, alerted on; prints the achieved rate, alerts, latency percentiles
# and peak RSS. Latency is fired_at − window_end: from the message that made the alert fire
# (the newest of its window; after a re-arm the trigger itself may be older) being produced
# to its alert leaving the operator. Timestamps have millisecond resolution.
#
#   bench/ddos-latency.sh [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-100000}
SECS=${2:-30}
cargo build --release -q
mkdir -p bench/out
COUNT=$((RATE * SECS))
t=$( { /usr/bin/time -f "%e %M" target/release/weir run bench/ddos.toml --quiet \
  --set "source.events.rate=$RATE" --set "source.events.count=$COUNT" \
  --set sink.alerts.path=bench/out/alerts.jsonl ; } 2>&1 | tail -1)
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
python3 - "$t" "$COUNT" bench/out/alerts.jsonl <<'PY'
import json, sys, datetime
wall, rss = sys.argv[1].split()
count = int(sys.argv[2])
def ms(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000
lat = sorted(ms(a["fired_at"]) - ms(a["window_end"]) for a in map(json.loads, open(sys.argv[3])))
def pct(p):
    return lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
print(f"messages {count} in {float(wall):.1f} s = {count / float(wall):,.0f}/s; peak RSS {int(rss) / 1024:.1f} MiB")
print(f"alerts {len(lat)}; latency ms p50 {pct(50):.0f}  p99 {pct(99):.0f}  p99.9 {pct(99.9):.0f}  max {lat[-1]:.0f}")
PY
