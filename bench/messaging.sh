#!/usr/bin/env bash
# Message connectors end to end, against the local servers: the peers' W2 DDOS input is
#  1. published by weir's `nats` sink into a JetStream stream (rows/s, waiting for every
#     acknowledgement), then
#  2. read back by the `nats` source through the W2 job (events/s), its output compared
#     with the same job reading the file, and
#  3. over MQTT (QoS 1): published by the `mqtt` sink while the `mqtt` source reads the
#     topic into the W2 job (first MQTT_EVENTS events, default 200000), without checkpoints
#     (acknowledged on read; with checkpoints the broker's in-flight limit, 20 messages per
#     checkpoint by default, sets the pace), and
#  4. published by the `rabbitmq` sink into a durable queue (persistent messages, waiting
#     for every publisher confirm; the queue's count is checked against the input).
# Prints wall time, rows/s, MiB/s and peak RSS per step.
#
#   bench/messaging.sh [EVENTS]        default 1000000 events
# Needs nats-py and pika (pip install nats-py pika) to create the stream and the queue.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
cargo build --release -q
WEIR=target/release/weir
mkdir -p bench/data bench/out
DATA=bench/data/ddos_$N.jsonl
[ -s "$DATA" ] || python3 ../shared/peers/gen_ddos.py "$N" 42 > "$DATA"
BYTES=$(stat -c %s "$DATA")
STREAM=WEIRBENCH_$$
SUBJECT=weirbench.$$.ddos
TOPIC=weirbench/$$/ddos
QUEUE=weirbench_$$
python3 bench/js_stream.py create "$STREAM" "$SUBJECT"
python3 bench/amqp_queue.py create "$QUEUE"
trap 'python3 bench/js_stream.py delete "$STREAM" || true; python3 bench/amqp_queue.py delete "$QUEUE" || true' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# input: $DATA, $N events, $((BYTES / 1048576)) MiB"
printf "%-34s %8s %12s %9s %9s\n" step wall_s events_per_s MiB_per_s rss_MiB
timed() { # name, then the command
  local name=$1; shift
  local out
  out=$( { /usr/bin/time -f "%e %M" "$@" >/dev/null; } 2>&1 | tail -1)
  local wall=${out% *} rss=${out#* }
  awk -v n="$name" -v w="$wall" -v r="$rss" -v e="$N" -v b="$BYTES" \
    'BEGIN { printf "%-34s %8.2f %12.0f %9.1f %9.1f\n", n, w, e / w, b / 1048576 / w, r / 1024 }'
}
W2_FORMAT='{ type = "json", fields = [{ name = "ts_ms", type = "timestamp", required = true }, { name = "type", type = "string" }, { name = "target_ip", type = "string" }] }'

# The W2 job reading a given source table (everything after [source.events] type = ...).
w2() { # file, then the source's own lines
  local file=$1; shift
  { echo "[source.events]"; printf "%s\n" "$@"; echo "format = $W2_FORMAT"
    sed -n '/^event_time/,$p' bench/w2.toml; } > "$file"
}
w2 bench/out/w2_file.toml 'type = "file"' "path = \"$DATA\""
w2 bench/out/w2_nats.toml 'type = "nats"' "stream = \"$STREAM\"" 'stop_when_caught_up = true'
w2 bench/out/w2_mqtt.toml 'type = "mqtt"' "topics = [\"$TOPIC\"]" 'client_id = "weirbench-reader"' 'stop_when_idle = "3s"'

cat > bench/out/publish_nats.toml <<TOML
[source.events]
type = "file"
path = "$DATA"
format = $W2_FORMAT
[sink.stream]
type = "nats"
input = "events"
subject = "$SUBJECT"
TOML
timed "nats sink: publish (JetStream acks)" $WEIR run bench/out/publish_nats.toml --quiet
echo "# stream holds $(python3 bench/js_stream.py count "$STREAM") messages"

timed "file source: W2 (reference)" $WEIR run bench/out/w2_file.toml --quiet \
  --set sink.out.path=bench/out/w2_file.jsonl
timed "nats source: W2" $WEIR run bench/out/w2_nats.toml --quiet \
  --set sink.out.path=bench/out/w2_nats.jsonl
cmp -s bench/out/w2_file.jsonl bench/out/w2_nats.jsonl && echo "# W2 output from the stream equals the file's" \
  || { echo "# W2 OUTPUTS DIFFER"; exit 1; }

# MQTT: the reader first (its session must exist before anything is published), then the
# writer; the reader's time is the pipeline's, end to end.
M=${MQTT_EVENTS:-200000}
head -n "$M" "$DATA" > bench/data/ddos_mqtt.jsonl
sed -e "s|$DATA|bench/data/ddos_mqtt.jsonl|" bench/out/publish_nats.toml \
  | sed -e 's|type = "nats"|type = "mqtt"|' -e "s|subject = .*|topic = \"$TOPIC\"\nclient_id = \"weirbench-writer\"|" \
  > bench/out/publish_mqtt.toml
mqtt_run() { # name, extra weir args
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  $WEIR run bench/out/w2_mqtt.toml --quiet --set sink.out.path=bench/out/w2_mqtt.jsonl "$@" >/dev/null &
  local reader=$!
  sleep 1
  $WEIR run bench/out/publish_mqtt.toml --quiet
  wait $reader
  end=$(date +%s.%N)
  # The reader ends 3 s after the last message (stop_when_idle), and started 1 s early.
  awk -v n="$name" -v s="$start" -v e="$end" -v m="$M" \
    'BEGIN { w = e - s - 4; printf "%-34s %8.2f %12.0f\n", n, w, m / w }'
}
N=$M
mqtt_run "mqtt sink -> source: W2 (no ckpt)"
$WEIR run bench/out/w2_file.toml --quiet --set source.events.path=bench/data/ddos_mqtt.jsonl \
  --set sink.out.path=bench/out/w2_mqtt_file.jsonl
cmp -s bench/out/w2_mqtt_file.jsonl bench/out/w2_mqtt.jsonl && echo "# W2 output over MQTT equals the file's" \
  || echo "# W2 over MQTT differs from the file's: the broker dropped messages (Mosquitto's max_queued_messages) or delivered some twice"

# RabbitMQ: the whole input through the sink (persistent, publisher confirms) into a durable
# queue; the run ends when the broker has confirmed every row.
N=$(wc -l < "$DATA")
sed -e 's|type = "nats"|type = "rabbitmq"|' -e "s|subject = .*|routing_key = \"$QUEUE\"|" \
  bench/out/publish_nats.toml > bench/out/publish_amqp.toml
timed "rabbitmq sink: publish (confirms)" $WEIR run bench/out/publish_amqp.toml --quiet
GOT=$(python3 bench/amqp_queue.py count "$QUEUE")
echo "# queue holds $GOT messages of $N"
[ "$GOT" = "$N" ] || { echo "# RABBITMQ QUEUE COUNT DIFFERS"; exit 1; }
