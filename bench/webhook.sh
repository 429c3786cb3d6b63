#!/usr/bin/env bash
# What a slow webhook receiver costs: N rows to an endpoint answering in DELAY ms, with the
# default concurrency (64) and with 1 (the old one-at-a-time delivery), and the same rows to a
# JSON-lines file beside it, whose time shows whether the rest of the pipeline waits.
#   bench/webhook.sh [ROWS] [DELAY_MS]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
ROWS=${1:-1000}
DELAY=${2:-500}
WEIR=${WEIR:-target/release/weir}
[ -x "$WEIR" ] || cargo build --release -q
PORT=$((20000 + RANDOM % 20000))
python3 bench/slow_hook.py $PORT "$DELAY" > bench/out/hook.txt &
HOOK=$!
trap 'kill $HOOK 2>/dev/null || true' EXIT
sleep 0.5
mkdir -p bench/out
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# $ROWS rows, receiver answers in $DELAY ms, binary $WEIR"
for conc in 64 1; do
  rows=$ROWS
  [ $conc = 1 ] && rows=$((ROWS / 50))   # one at a time is slow: fewer rows
  cat > bench/out/webhook.toml <<TOML
[source.gen]
type = "generator"
kind = "clf"
count = $rows
format = { type = "clf" }

[sink.hook]
type = "webhook"
input = "gen"
url = "http://127.0.0.1:$PORT/hook"
concurrency = $conc

[sink.file]
type = "jsonl"
input = "gen"
path = "bench/out/webhook_rows.jsonl"
TOML
  start=$(date +%s.%N)
  $WEIR run --quiet bench/out/webhook.toml
  end=$(date +%s.%N)
  awk -v r=$rows -v s=$start -v e=$end -v c=$conc \
    'BEGIN { printf "concurrency %3d: %6d rows in %6.2f s = %7.1f deliveries/s\n", c, r, e - s, r / (e - s) }'
done
