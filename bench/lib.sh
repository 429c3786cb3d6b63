# Shared by the bench scripts: `source bench/lib.sh` from the repository root.

# Builds weir (release) and generates N CLF lines once into bench/data. Sets WEIR, DATA, BYTES.
bench_data() { # lines
  cargo build --release -q
  WEIR=target/release/weir
  DATA=bench/data/clf_$1.log
  mkdir -p bench/data bench/out
  if [ ! -s "$DATA" ]; then
    echo "generating $1 lines into $DATA ..." >&2
    $WEIR gen clf --count "$1" --seed 42 --out "$DATA"
  fi
  BYTES=$(stat -c %s "$DATA")
}

# The date, the machine and the input, as the first lines of a result.
bench_header() { # lines
  echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "# input: $DATA, $1 lines, $((BYTES / 1048576)) MiB (page cache warm after the first run)"
}

# The median of its arguments.
median() { printf "%s\n" "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
