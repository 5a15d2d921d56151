#!/usr/bin/env bash
# make bench: measures, in one go on this machine,
#   (a) the PostgreSQL ceiling with pgbench for ledgerd's own statements (one
#       change per transaction: guarded UPDATE, entry INSERT, outbox INSERT),
#       on one hot row with 8 clients and spread over 10,000 users with 32;
#   (b) the HTTP ceiling: the load tool against its trivial handler;
#   (c) ledgerd with group commit off (MAX_BATCH=1);
#   (d) ledgerd with group commit on (the default), plus an open-loop hot run
#       at 3/4 of the closed loop's rate;
#   (e) the relay's drain against the broker's raw publish ceiling;
#   (f) a long history, and (g) checkpoints over 1,000,000 users (build
#       time, memory, and writes beside the builds);
# for the hot (sustained) and spread scenarios and the original burst, with
# `ledgerd verify` after each server, and writes docs/performance.md with
# its plots in docs/perf/ (from the runs' .hgrm files and timelines).
# Bounded: every run has a fixed duration or count, every wait a limit;
# everything goes to 127.0.0.1. Needs PostgreSQL and RabbitMQ on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${BENCH_DURATION:-10s}
SECS=${DUR%s}
CLIENTS=${BENCH_PG_CLIENTS:-16}        # transactions in flight with group commit off
HOT_CLIENTS=${BENCH_PG_HOT_CLIENTS:-8}  # pgbench clients on the hot row (issue 11's target)
SPREAD_CLIENTS=${BENCH_PG_SPREAD_CLIENTS:-32}
SPREAD_USERS=${BENCH_SPREAD_USERS:-10000}
RELAY_N=${BENCH_RELAY_N:-20000}
DRAIN_N=${BENCH_DRAIN_N:-50000}
HISTORY_ENTRIES=${BENCH_HISTORY_ENTRIES:-1000000} # one user's prior entries in the history runs
HISTORY_TOTAL=${BENCH_HISTORY_TOTAL:-5000000}     # the entries table's size in the history runs
HDB=ledger_bench_history # kept between runs: only what is missing is written
HDBURL="postgres://postgres@localhost:5432/$HDB?sslmode=disable"
CHECKPOINT_USERS=${BENCH_CHECKPOINT_USERS:-1000000}     # users, hence leaves, of the checkpoint runs
CHECKPOINT_WRITERS=${BENCH_CHECKPOINT_WRITERS:-8}       # writers beside the checkpoint builds
CDB=ledger_bench_checkpoint # kept between runs, like $HDB
CDBURL="postgres://postgres@localhost:5432/$CDB?sslmode=disable"
DB=ledger_bench
DBURL="postgres://postgres@localhost:5432/$DB?sslmode=disable"
EXCHANGE=bench.ledger.events
OUT=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT
log() { printf '[bench] %s\n' "$*" >&2; }

PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1)
[ -x "$PGBENCH" ] || { echo "pgbench not found (Debian package postgresql-contrib or the server's bin directory)"; exit 1; }
PSQL="psql -h 127.0.0.1 -U postgres -X -q -v ON_ERROR_STOP=1"

log "building"
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/ledgerd ./cmd/ledgerd
CGO_ENABLED=0 go build -trimpath -o bin/loadtest ./cmd/loadtest

fresh_db() {
  $PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
  DATABASE_URL=$DBURL bin/ledgerd migrate up >/dev/null
}

{ echo "cores=$(nproc)"; echo "memory=$(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"; echo "go=$(go env GOVERSION)"; } > "$OUT/machine.txt"
$PSQL -d postgres -At -c "SELECT name || '=' || current_setting(name) FROM pg_settings
  WHERE name IN ('server_version', 'shared_buffers', 'synchronous_commit', 'fsync', 'wal_sync_method',
                 'max_connections', 'commit_delay', 'wal_buffers', 'checkpoint_timeout') ORDER BY name" > "$OUT/pgsettings.txt"

# (a) pgbench ceilings ---------------------------------------------------
pgbench_run() { # name users clients
  fresh_db
  $PSQL -d $DB -c "INSERT INTO users (id) SELECT generate_series(1, $2)" >/dev/null
  local script="$OUT/$1.sql"
  { echo "\\set uid random(1, $2)"; cat scripts/pgbench-change.sql; } > "$script"
  log "pgbench $1: $2 users, $3 clients, ${SECS}s"
  (cd "$OUT" && "$PGBENCH" -h 127.0.0.1 -U postgres -n -c "$3" -j 2 -T "$SECS" -f "$script" -l --log-prefix="$1" "$DB" > "$1.pgbench.txt" 2>&1)
  local tps p99
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/$1.pgbench.txt" | head -n 1)
  p99=$(cat "$OUT/$1".[0-9]* 2>/dev/null | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {if (NR) printf "%.1f", a[int(NR*0.99)]/1000}')
  printf '{"scenario":"%s","rps":%s,"latency_ms":{"p99":%s},"ok":true}\n' "$1" "${tps:-0}" "${p99:-0}" > "$OUT/pg-$1.json"
}
pgbench_run hot 1 "$HOT_CLIENTS"
pgbench_run spread "$SPREAD_USERS" "$SPREAD_CLIENTS"

# (b) the HTTP ceiling ----------------------------------------------------
start_trivial() {
  bin/loadtest -serve-trivial -listen 127.0.0.1:3999 >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf http://127.0.0.1:3999/healthz >/dev/null && return; sleep 0.1; done
  echo "trivial server did not start"; exit 1
}
lt() { # name url args...: the JSON report, the latency distribution and the timeline into $OUT
  local name=$1 url=$2; shift 2
  log "loadtest $name $*"
  bin/loadtest -url "$url" -json -hgrm "$OUT/$name.hgrm" -timeline "$OUT/$name.timeline.csv" "$@" > "$OUT/$name.json" || true
}
start_trivial
lt trivial-hot-sustained http://127.0.0.1:3999 -scenario hot-sustained -duration "$DUR"
lt trivial-spread http://127.0.0.1:3999 -scenario spread -users "$SPREAD_USERS" -duration "$DUR" -n 100000000
lt trivial-hot http://127.0.0.1:3999 -scenario hot

# (c) and (d) ledgerd -----------------------------------------------------
start_ledgerd() { # name max_batch max_inflight
  fresh_db
  DATABASE_URL=$DBURL HTTP_ADDR=127.0.0.1:3998 MAX_BATCH=$2 MAX_INFLIGHT=${3:-4} AMQP_EXCHANGE=$EXCHANGE RELAY_QUEUE= \
    LOG_LEVEL=error bin/ledgerd serve --no-migrate > "$OUT/$1.log" 2>&1 &
  LEDGERD_PID=$!
  PIDS+=($LEDGERD_PID)
  for _ in $(seq 100); do curl -sf http://127.0.0.1:3998/healthz >/dev/null && return; sleep 0.1; done
  echo "ledgerd did not start"; cat "$OUT/$1.log"; exit 1
}
stop_ledgerd() { kill "$LEDGERD_PID"; wait "$LEDGERD_PID" 2>/dev/null || true; }
rss() { awk '/VmHWM/ {print $2}' "/proc/$LEDGERD_PID/status"; }
# wait_drained: until the relay of the ledgerd under test has published
# every event (/readyz shows pending 0), at most 120 s, so that the next
# run's backlog is its own.
wait_drained() {
  local pending=""
  for _ in $(seq 1200); do
    pending=$(curl -sf http://127.0.0.1:3998/readyz | sed -n 's/.*"pending":\([0-9]*\).*/\1/p' || true)
    [ "$pending" = 0 ] && return
    sleep 0.1
  done
  log "the outbox still has ${pending:-?} events after 120 s"
}
# verify NAME: ledgerd verify over the whole database, as a result file.
verify() {
  local out ok=true
  out=$(DATABASE_URL=$DBURL bin/ledgerd verify 2>/dev/null) || ok=false
  out=$(printf '%s' "$out" | tail -n 1 | sed 's/"/\\"/g')
  log "verify $1: $out"
  printf '{"scenario":"verify","ok":%s,"details":{"output":"%s"}}\n' "$ok" "$out" > "$OUT/verify-$1.json"
}
# rps_of NAME: the req/s of a run's JSON report, 0 when it has none.
# (the first "rps" of the report is the run's; the timeline's come after).
rps_of() { grep -o '"rps":[0-9.]*' "$OUT/$1.json" 2>/dev/null | head -n 1 | cut -d: -f2 | grep . || echo 0; }

# Group commit off: one request per transaction, as many transactions in
# flight as pgbench has clients.
start_ledgerd unbatched 1 "$CLIENTS"
lt unbatched-hot http://127.0.0.1:3998 -scenario hot
lt unbatched-hot-sustained http://127.0.0.1:3998 -scenario hot-sustained -duration "$DUR"
lt unbatched-spread http://127.0.0.1:3998 -scenario spread -users "$SPREAD_USERS" -duration "$DUR" -n 100000000
stop_ledgerd
verify unbatched

start_ledgerd batched 512
lt batched-hot http://127.0.0.1:3998 -scenario hot
wait_drained
lt batched-hot-sustained http://127.0.0.1:3998 -scenario hot-sustained -duration "$DUR"
echo "{\"rss_kb\": $(rss)}" > "$OUT/batched-rss.json"
# The open loop at 3/4 of the closed loop's rate: latency at a load the
# server sustains, counted from each request's due time.
OPEN_RATE=$(awk -v r="$(rps_of batched-hot-sustained)" 'BEGIN { r = int(r * 0.75); print (r < 100 ? 100 : r) }')
wait_drained
lt batched-hot-open http://127.0.0.1:3998 -scenario hot-sustained -rate "$OPEN_RATE/s" -duration "$DUR"
wait_drained
# The write cost per change over the spread run, the sequencer's share
# (the event log's rows, the outbox's deletes) and the relay's included:
# WAL bytes and table growth.
cost_probe() { $PSQL -d $DB -At -c "SELECT pg_current_wal_lsn() || ' ' || (SELECT count(*) FROM entries) || ' ' ||
  (pg_total_relation_size('entries') + pg_total_relation_size('outbox') + pg_total_relation_size('event_log'))"; }
read -r lsn0 e0 sz0 <<< "$(cost_probe)"
lt batched-spread http://127.0.0.1:3998 -scenario spread -users "$SPREAD_USERS" -duration "$DUR" -n 100000000
wait_drained
read -r lsn1 e1 sz1 <<< "$(cost_probe)"
wal=$($PSQL -d $DB -At -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')::bigint")
n=$((e1 - e0))
printf '{"scenario":"cost","requests":%s,"ok":true,"details":{"wal_bytes_per_change":%s,"table_bytes_per_change":%s}}\n' \
  "$n" "$((wal / (n > 0 ? n : 1)))" "$(((sz1 - sz0) / (n > 0 ? n : 1)))" > "$OUT/cost.json"
lt batched-relay http://127.0.0.1:3998 -scenario relay -n "$RELAY_N"
stop_ledgerd
verify batched

# (e) the relay's drain rate against the broker's raw publish ceiling -----
log "amqp raw publish ceiling (windows of 256 confirms)"
go run ./scripts/amqpceiling -n "$DRAIN_N" > "$OUT/amqp-ceiling.json"
# The same with 2 and 4 connections publishing at once into the one queue,
# as 2 and 4 relay partitions do.
for c in 2 4; do
  log "amqp raw publish ceiling, $c channels"
  go run ./scripts/amqpceiling -n "$DRAIN_N" -channels "$c" -scenario "amqp-ceiling-$c" > "$OUT/amqp-ceiling-$c.json"
done
fresh_db
DATABASE_URL=$DBURL HTTP_ADDR=127.0.0.1:3998 RELAY_ENABLED=false LOG_LEVEL=error \
  bin/ledgerd serve --no-migrate > "$OUT/norelay.log" 2>&1 &
LEDGERD_PID=$!; PIDS+=($LEDGERD_PID)
for _ in $(seq 100); do curl -sf http://127.0.0.1:3998/healthz >/dev/null && break; sleep 0.1; done
lt drain-burst http://127.0.0.1:3998 -scenario spread -n "$DRAIN_N"
stop_ledgerd
# The same backlog is drained four times, by one `ledgerd relay` with 1, 2
# and 4 partitions into a classic queue, and with 1 into a quorum queue:
# before each, every partition's offset is set back to the burst's start
# (as a relay of another count would repartition them, without its wait
# for the old count's relays), and the drain queue is emptied.
base=$($PSQL -d $DB -At -c "SELECT position FROM relay_partitions WHERE partition = 0")
pending=$($PSQL -d $DB -At -c "SELECT (SELECT count(*) FROM outbox) + (SELECT coalesce(max(position), 0) FROM event_log) - $base")
# Unpublished: waiting for a position, or in the event log past its partition's offset.
unpublished() { $PSQL -d $DB -At -c "SELECT (SELECT count(*) FROM outbox) + (SELECT count(*) FROM event_log l JOIN relay_partitions o
  ON o.partition = l.user_id % o.partitions WHERE l.position > o.position)"; }
# CPU time (user + system, clock ticks) of the processes given, and of
# PostgreSQL: its postmaster, with what its exited children used (it reaps
# them), plus its live children.
ticks_of() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}'))); done; echo "$t"; }
pg_ticks() {
  local pm t
  pm=$(head -n 1 "$($PSQL -d $DB -At -c 'SHOW data_directory')/postmaster.pid")
  t=$(sed 's/.*) //' "/proc/$pm/stat" | awk '{print $12 + $13 + $14 + $15}')
  echo $((t + $(ticks_of $(pgrep -P "$pm"))))
}
HZ=$(getconf CLK_TCK)
for run in 1 2 4 1-quorum; do
  parts=${run%-quorum}; qtype=classic; queue=$EXCHANGE.drain
  [ "$run" = "$parts" ] || { qtype=quorum; queue=$EXCHANGE.drainq; }
  $PSQL -d $DB -q -c "BEGIN; DELETE FROM relay_partitions;
    INSERT INTO relay_partitions SELECT p, $parts, $base FROM generate_series(0, $parts - 1) AS p; COMMIT;"
  rabbitmqctl -q purge_queue "$queue" >/dev/null 2>&1 || true
  log "relay drain of $pending events, $parts partition(s), $qtype queue"
  DATABASE_URL=$DBURL HTTP_ADDR=127.0.0.1:3993 AMQP_EXCHANGE=$EXCHANGE RELAY_QUEUE=$queue RELAY_QUEUE_TYPE=$qtype RELAY_PARTITIONS=$parts LOG_LEVEL=error \
    bin/ledgerd relay > "$OUT/relay-$run.log" 2>&1 &
  RELAY_PID=$!; PIDS+=($RELAY_PID)
  t0=""; left=$pending
  read -r r0 b0 p0 <<< "$(ticks_of $RELAY_PID) $(ticks_of $(pgrep -x beam.smp)) $(pg_ticks)"; ts0=$(date +%s.%N)
  for _ in $(seq 6000); do
    status=$(curl -sf http://127.0.0.1:3993/readyz || true)
    published=$(printf '%s' "$status" | sed -n 's/.*"published":\([0-9]*\).*/\1/p')
    if [ -n "$published" ] && [ "$published" -gt 0 ] && [ -z "$t0" ]; then t0=$(date +%s.%N); fi
    if [ -n "$published" ] && [ "$published" -ge "$pending" ]; then break; fi
    sleep 0.05
  done
  t1=$(date +%s.%N)
  read -r r1 b1 p1 <<< "$(ticks_of $RELAY_PID) $(ticks_of $(pgrep -x beam.smp)) $(pg_ticks)"
  kill "$RELAY_PID"; wait "$RELAY_PID" 2>/dev/null || true
  left=$(unpublished)
  rate=$(awk -v n="$pending" -v a="${t0:-$t1}" -v b="$t1" 'BEGIN { d = b - a; if (d <= 0) d = 0.001; printf "%.0f", n / d }')
  # Cores busy from the relay's start to the drain's end.
  cores() { awk -v t="$1" -v hz="$HZ" -v a="$ts0" -v b="$t1" 'BEGIN { printf "%.2f", t / hz / (b - a) }'; }
  name=relay-drain; [ "$run" = 1 ] || name=relay-drain-$run
  printf '{"scenario":"%s","rps":%s,"requests":%s,"ok":%s,"details":{"left_pending":%s,"partitions":%s,"queue_type":"%s","cores_relay":%s,"cores_broker":%s,"cores_postgres":%s}}\n' \
    "$name" "$rate" "$pending" "$([ "$left" = 0 ] && echo true || echo false)" "$left" "$parts" "$qtype" \
    "$(cores $((r1 - r0)))" "$(cores $((b1 - b0)))" "$(cores $((p1 - p0)))" > "$OUT/$name.json"
done
rabbitmqctl -q delete_queue "$EXCHANGE.drain" >/dev/null 2>&1 || true
rabbitmqctl -q delete_queue "$EXCHANGE.drainq" >/dev/null 2>&1 || true

# (f) a long history -----------------------------------------------------
# One user with HISTORY_ENTRIES entries and HISTORY_TOTAL in the table,
# written through ledgerd's own write path (scripts/history, large group-
# commit batches, valid chains). The database is kept between runs, so only
# the first run pays for the fill (about 5 minutes for 5,000,000 entries).
# Then, on one server (relay and auditor off, so that they do not share the
# cores with the measurement): writes to the long-history user and to a
# fresh user side by side, the reads of the long history (first page,
# balance deep in the past, /verify of all of it), and one auditor pass.
$PSQL -d postgres -At -c "SELECT 1 FROM pg_database WHERE datname = '$HDB'" | grep -q 1 ||
  $PSQL -d postgres -c "CREATE DATABASE $HDB" >/dev/null
log "history: $HISTORY_ENTRIES entries for user 1, $HISTORY_TOTAL in all (kept in $HDB)"
go run ./scripts/history -database-url "$HDBURL" -entries "$HISTORY_ENTRIES" -total "$HISTORY_TOTAL" -audit \
  > "$OUT/history-fill.json" || true
DATABASE_URL=$HDBURL HTTP_ADDR=127.0.0.1:3998 RELAY_ENABLED=false AUDIT_ENABLED=false LOG_LEVEL=error \
  bin/ledgerd serve --no-migrate > "$OUT/history.log" 2>&1 &
LEDGERD_PID=$!; PIDS+=($LEDGERD_PID)
for _ in $(seq 100); do curl -sf http://127.0.0.1:3998/healthz >/dev/null && break; sleep 0.1; done
lt history-long http://127.0.0.1:3998 -scenario hot-sustained -user 1 -duration "$DUR"
lt history-fresh http://127.0.0.1:3998 -scenario hot-sustained -duration "$DUR"
lt history-reads http://127.0.0.1:3998 -scenario history-reads -user 1 -n 2000 -c 16
stop_ledgerd

# (g) checkpoints --------------------------------------------------------
# CHECKPOINT_USERS users with one opening entry each, in a database kept
# between runs (created, migrated and filled by scripts/checkpointbench:
# about 20 s the first time, in SQL batches with valid chains). Then, in
# that process, no server running: checkpoints built on the idle database
# (time, and the Go heap's peak growth, sampled every 50 ms), and a write
# load of CHECKPOINT_WRITERS goroutines through package ledger for $DUR,
# once alone and once while checkpoints are built back to back.
log "checkpoints: $CHECKPOINT_USERS users (kept in $CDB), $CHECKPOINT_WRITERS writers for $DUR without and with builds"
go run ./scripts/checkpointbench -database-url "$CDBURL" -users "$CHECKPOINT_USERS" -writers "$CHECKPOINT_WRITERS" \
  -duration "$DUR" > "$OUT/checkpoint.json" || true

$PSQL -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$EXCHANGE\">>), false, <<\"bench\">>)." >/dev/null 2>&1 || true

go run ./scripts/benchreport -dir "$OUT" -duration "$DUR" -pg-hot-clients "$HOT_CLIENTS" -pg-spread-clients "$SPREAD_CLIENTS" \
  -spread-users "$SPREAD_USERS" -plots docs/perf -plots-link perf > docs/performance.md
log "wrote docs/performance.md and its plots in docs/perf/"
