#!/usr/bin/env bash
# Build times a person waits for, measured on a fresh clone of this checkout's HEAD:
#
#   1. README's first command, cold (empty target/), to its first line of output
#   2. README's second command (the test suite) right after it, to its end
#   3. `cargo build --release` after a one-line change in crates/core
#   4. `cargo test -p weir-window` after a one-line change in crates/core (once to build what
#      that selection needs, then measured after another change)
#   5. the stripped size of target/release/weir (and of the `dist` profile's with DIST=1)
#
#   bench/build.sh [DIR]        default ../weir-build beside this checkout (the tests read
#                               ../shared, as in CI); DIR is deleted and cloned anew
#   DIST=1 bench/build.sh       also builds `--profile dist` (fat LTO: long) and its size
#   SKIP_TESTS=1 bench/build.sh skips row 2 (it runs the whole suite: services needed)
#
# Crates are fetched before the clock starts (`cargo fetch`): the rows measure compiling, not
# the network. Each command's CPU time and peak memory come from /usr/bin/time; `cargo
# --timings` reports land in DIR/target/cargo-timings/. Results go to stdout and to
# bench/out/build-<date>.txt in this checkout.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$(dirname "$SRC")/weir-build}
OUTFILE=$SRC/bench/out/build-$(date -u +%Y%m%dT%H%MZ).txt
mkdir -p "$SRC/bench/out"

say() { echo "$*" | tee -a "$OUTFILE"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b - a }'; }
mmss() { awk -v s="$1" 'BEGIN { printf "%d min %02d s", s / 60, s % 60 }'; }
# cpu LOG: user + system seconds and peak RSS from a /usr/bin/time -v log.
cpu() {
  awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } /Maximum resident/ { m = $2 }
    END { printf "CPU %.0f s, peak RSS %.1f GiB", u + s, m / 1048576 }' "$1"
}

rm -rf "$DIR"
git clone -q "$SRC" "$DIR"
cd "$DIR"
cargo fetch -q
say "# bench/build.sh $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(rustc --version)"
say "# clone of $(git -C "$SRC" rev-parse --short HEAD) in $DIR"

# README's two quick-start commands, as written there.
mapfile -t QUICK < <(awk '/^## Quick start/ { q = 1 } q && /^```sh/ { f = 1; next } f && /^```/ { exit } f' README.md \
  | sed 's/ *#.*$//' | sed '/^$/d')
[ "${#QUICK[@]}" -ge 2 ] || { echo "README's quick start has no two commands" >&2; exit 1; }
FIRST=${QUICK[0]}
SECOND=${QUICK[1]}

# 1. The first command, cold, to its first line of output.
t0=$(date +%s.%N)
first_line=""
while IFS= read -r line; do
  [ -n "$first_line" ] || first_line=$(date +%s.%N)
done < <(/usr/bin/time -v -o /tmp/weir-build-1.time bash -c "${FIRST/cargo run /cargo run --timings }" 2>/tmp/weir-build-1.err)
t1=$(date +%s.%N)
[ -n "$first_line" ] || { tail -20 /tmp/weir-build-1.err >&2; echo "no output from: $FIRST" >&2; exit 1; }
say "1. $FIRST: first output line after $(mmss "$(secs "$t0" "$first_line")"), done after $(mmss "$(secs "$t0" "$t1")") ($(cpu /tmp/weir-build-1.time))"

# 2. The second command right after.
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  t0=$(date +%s.%N)
  status=0
  /usr/bin/time -v -o /tmp/weir-build-2.time bash -c "$SECOND" >/tmp/weir-build-2.out 2>&1 || status=$?
  t1=$(date +%s.%N)
  summary=$(grep -E '^test result:' /tmp/weir-build-2.out | awk '{ p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d ignored", p, f, i }')
  say "2. $SECOND: $(mmss "$(secs "$t0" "$t1")") in all, exit $status, $summary ($(cpu /tmp/weir-build-2.time))"
  grep -E 'Finished .test. profile' /tmp/weir-build-2.out | head -1 | sed 's/^ */   compile: /' | tee -a "$OUTFILE"
fi

# A one-line change in crates/core: a real code change in a function every crate reaches.
edit_core() {
  git checkout -q crates/core/src/time.rs
  sed -i "s|let secs = ms.div_euclid(1000);|let secs = std::hint::black_box(ms).div_euclid(1000); // $1|" crates/core/src/time.rs
  grep -q "// $1" crates/core/src/time.rs || { echo "the line to change in crates/core/src/time.rs moved" >&2; exit 1; }
}

# 3. A release rebuild after it.
edit_core rebuild
t0=$(date +%s.%N)
/usr/bin/time -v -o /tmp/weir-build-3.time cargo build --release -q 2>/tmp/weir-build-3.err
t1=$(date +%s.%N)
say "3. cargo build --release after a one-line change in crates/core: $(mmss "$(secs "$t0" "$t1")") ($(cpu /tmp/weir-build-3.time))"

# 4. The window crate's tests after another. `-p weir-window` unifies the features of shared
# dependencies over its own dependency tree, not the workspace's, so its first run after the
# workspace build compiles some dependencies again: that run is reported, then a second
# change is measured, as a developer iterating on that crate meets it.
edit_core window-first
t0=$(date +%s.%N)
status=0
/usr/bin/time -v -o /tmp/weir-build-4.time cargo test -p weir-window >/tmp/weir-build-4.out 2>&1 || status=$?
t1=$(date +%s.%N)
say "4. cargo test -p weir-window, first time after the above: $(mmss "$(secs "$t0" "$t1")") in all, exit $status, $(grep -c ' Compiling ' /tmp/weir-build-4.out) crates compiled ($(cpu /tmp/weir-build-4.time))"
edit_core window
t0=$(date +%s.%N)
status=0
/usr/bin/time -v -o /tmp/weir-build-4.time cargo test -p weir-window >/tmp/weir-build-4.out 2>&1 || status=$?
t1=$(date +%s.%N)
say "   after another one-line change in crates/core: $(mmss "$(secs "$t0" "$t1")") in all, exit $status, $(grep -c ' Compiling ' /tmp/weir-build-4.out) crates compiled ($(cpu /tmp/weir-build-4.time))"
grep -E 'Finished .test. profile' /tmp/weir-build-4.out | head -1 | sed 's/^ */   compile: /' | tee -a "$OUTFILE"
git checkout -q crates/core/src/time.rs

# 5. Sizes.
strip -o /tmp/weir-build.stripped target/release/weir
say "5. target/release/weir: $(($(stat -c %s target/release/weir) / 1048576)) MiB, stripped $(($(stat -c %s /tmp/weir-build.stripped) / 1048576)) MiB"
if [ "${DIST:-0}" = 1 ]; then
  t0=$(date +%s.%N)
  /usr/bin/time -v -o /tmp/weir-build-6.time cargo build --profile dist -q 2>/tmp/weir-build-6.err
  t1=$(date +%s.%N)
  say "   cargo build --profile dist (after the above): $(mmss "$(secs "$t0" "$t1")") ($(cpu /tmp/weir-build-6.time)); target/dist/weir $(($(stat -c %s target/dist/weir) / 1048576)) MiB (stripped by the profile)"
fi
say "# written to $OUTFILE"
