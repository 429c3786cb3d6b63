#!/usr/bin/env bash
# What archiving the raw stream costs: the http-status job on N generated CLF lines, without
# an archive and with one (raw lines by hour: gzip level 6 and 1, zstd 3, none; and the parsed
# records as zstd JSON lines), REPEAT runs each, alternating, on all cores (the archive has its
# own thread). Prints lines/s, MiB/s, wall, peak RSS and the archive's size, then medians.
#
#   bench/archive.sh [LINES] [REPEAT]       default 10000000 lines, 3 runs each
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-10000000}
REPEAT=${2:-3}
source bench/lib.sh
bench_data "$LINES"
bench_header "$LINES"
printf "%-22s %10s %14s %10s %12s %12s\n" config wall_s lines_per_s MiB_per_s peak_rss_MiB archive_MiB
CONFIGS=(no_archive lines_gzip6 lines_gzip1 lines_zstd3 lines_none jsonl_zstd3)
declare -A WALLS
args_of() {
  case $1 in
    no_archive) echo "bench/http-status.toml" ;;
    lines_gzip6) echo "bench/archive.toml" ;;
    lines_gzip1) echo "bench/archive.toml --set sink.archive.level=1" ;;
    lines_zstd3) echo "bench/archive.toml --set sink.archive.compression=zstd" ;;
    lines_none) echo "bench/archive.toml --set sink.archive.compression=none" ;;
    jsonl_zstd3) echo "bench/archive.toml --set sink.archive.format=jsonl --set sink.archive.compression=zstd" ;;
  esac
}
for _ in $(seq "$REPEAT"); do
  for c in "${CONFIGS[@]}"; do
    rm -rf bench/out/archive
    # shellcheck disable=SC2046
    out=$( { /usr/bin/time -f "%e %M" $WEIR run $(args_of "$c") --quiet \
      --set "source.logs.path=$DATA" >/dev/null; } 2>&1 | tail -1)
    wall=${out% *} rss=${out#* }
    size=$(du -sm bench/out/archive 2>/dev/null | cut -f1 || echo 0)
    WALLS[$c]="${WALLS[$c]:-} $wall"
    awk -v n="$c" -v w="$wall" -v r="$rss" -v l="$LINES" -v b="$BYTES" -v s="${size:-0}" \
      'BEGIN { printf "%-22s %10.2f %14.0f %10.1f %12.1f %12s\n", n, w, l / w, b / 1048576 / w, r / 1024, s }'
  done
done
echo "# medians, and the ratio of throughput to the run without an archive"
# shellcheck disable=SC2086
base=$(median ${WALLS[no_archive]})
for c in "${CONFIGS[@]}"; do
  # shellcheck disable=SC2086
  med=$(median ${WALLS[$c]})
  awk -v n="$c" -v w="$med" -v l="$LINES" -v b="$BYTES" -v base="$base" \
    'BEGIN { printf "%-22s %10.2f %14.0f %10.1f   ratio %.3f\n", n " (median)", w, l / w, b / 1048576 / w, base / w }'
done
rm -rf bench/out/archive
