#!/usr/bin/env bash
# scaling.sh: the figures of docs/scaling.md, in one go on this machine
# (about 7 minutes). With release builds, as scripts/bench.sh makes them,
# and its group-commit parameters (MAX_BATCH=512, MAX_INFLIGHT=4; hot:
# hot-sustained with 1,000 requests in flight; spread: 10,000 users), for
# SCALING_DURATION (10 s) each:
#   (a) the pgbench ceilings of bench.sh (one hot row with 8 clients, 10,000
#       users with 32), on the main cluster;
#   (b) 1, 2 and 4 `ledgerd serve` processes on one database of the main
#       cluster, the load tool spreading its connections round-robin over
#       them, hot and spread;
#   (c) one ledgerd on a primary made with scripts/pg-cluster.sh, without
#       and then with a synchronous standby, hot and spread; then with the
#       standby again at MAX_INFLIGHT=16 (more transactions waiting for the
#       standby at once); last, the mixed scenario (40% writes, 20%
#       transfers, 20% history reads, 20% balance reads over 10,000 users)
#       without and with the standby as DATABASE_READ_URL.
# SCALING_ONLY=standby runs (c) alone (about 4 minutes).
# `ledgerd verify` after each configuration. Prints one line a run
# (name, req/s, p99 ms, result; then the write transactions per second
# and their mean batch, summed over the processes, over the load tool's
# whole run: for spread, its set-up's 10,000 user creations included) and leaves the JSON reports in
# SCALING_OUT (a temporary directory by default, removed at the end).
# Cleans up after itself: the processes it started, its database on the
# main cluster, its two ldgt_* clusters. Needs root or the postgres user
# for the clusters, PostgreSQL on 5432 and RabbitMQ on localhost.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${SCALING_DURATION:-10s}
SECS=${DUR%s}
SPREAD_USERS=10000
DB=ledger_scaling
PRIMARY_PORT=${SCALING_PRIMARY_PORT:-5491}
STANDBY_PORT=${SCALING_STANDBY_PORT:-5492}
EXCHANGE=scaling.ledger.events
KEEP_OUT=${SCALING_OUT:+yes}
OUT=${SCALING_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
PSQL="psql -X -q -v ON_ERROR_STOP=1 -U postgres"
PIDS=()
CLUSTERS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  $PSQL -h 127.0.0.1 -p 5432 -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  for c in "${CLUSTERS[@]}"; do scripts/pg-cluster.sh drop "$c" >/dev/null 2>&1 || true; done
  rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$EXCHANGE\">>), false, <<\"scaling\">>)." >/dev/null 2>&1 || true
  [ -n "$KEEP_OUT" ] || rm -rf "$OUT"
}
trap cleanup EXIT
log() { printf '[scaling] %s\n' "$*" >&2; }

PGBENCH=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V | tail -n 1)

log "building"
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/ledgerd ./cmd/ledgerd
CGO_ENABLED=0 go build -trimpath -o bin/loadtest ./cmd/loadtest

# fresh_db PORT: the database $DB, new and migrated, on the cluster at PORT.
fresh_db() {
  $PSQL -h 127.0.0.1 -p "$1" -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
  DATABASE_URL=$(dburl "$1") bin/ledgerd migrate up >/dev/null
}
dburl() { echo "postgres://postgres@127.0.0.1:$1/$DB?sslmode=disable"; }

# (a) pgbench ceilings, as bench.sh -------------------------------------
pgbench_run() { # name users clients
  fresh_db 5432
  $PSQL -h 127.0.0.1 -d $DB -c "INSERT INTO users (id) SELECT generate_series(1, $2)" >/dev/null
  { echo "\\set uid random(1, $2)"; cat scripts/pgbench-change.sql; } > "$OUT/$1.sql"
  "$PGBENCH" -h 127.0.0.1 -U postgres -n -c "$3" -j 2 -T "$SECS" -f "$OUT/$1.sql" "$DB" > "$OUT/$1.pgbench.txt" 2>&1
  printf '%-24s %8s tps\n' "pgbench-$1" "$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/$1.pgbench.txt" | head -n 1)"
}
log "pgbench ceilings"
if [ "${SCALING_ONLY:-}" != standby ]; then
  pgbench_run hot 1 8
  pgbench_run spread "$SPREAD_USERS" 32
fi

# ledgerd processes -------------------------------------------------------
# start_servers PORT N: N ledgerd serve processes on $DB at the cluster on
# PORT, HTTP on 127.0.0.1:3981.., with bench.sh's group-commit settings;
# sets URLS (comma-separated) and SERVERS (their pids).
start_servers() {
  local port=$1 n=$2 i addr
  URLS=""; SERVERS=()
  for i in $(seq "$n"); do
    addr=127.0.0.1:$((3980 + i))
    DATABASE_URL=$(dburl "$port") DATABASE_READ_URL=${READ_URL:-} HTTP_ADDR=$addr MAX_BATCH=512 MAX_INFLIGHT=${INFLIGHT:-4} AMQP_EXCHANGE=$EXCHANGE RELAY_QUEUE= \
      LOG_LEVEL=error bin/ledgerd serve --no-migrate > "$OUT/server-$port-$n-$i.log" 2>&1 &
    SERVERS+=($!); PIDS+=($!)
    URLS=${URLS:+$URLS,}http://$addr
  done
  for i in $(seq "$n"); do
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$((3980 + i))/healthz" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$((3980 + i))/healthz" >/dev/null || { cat "$OUT/server-$port-$n-$i.log"; exit 1; }
  done
}
stop_servers() {
  kill "${SERVERS[@]}" 2>/dev/null || true
  for p in "${SERVERS[@]}"; do wait "$p" 2>/dev/null || true; done
}
# wait_drained: until the leading relay has published every event (the
# first /readyz that shows pending 0; the followers show none), 120 s at most.
wait_drained() {
  local i pending
  for _ in $(seq 1200); do
    for i in $(seq "${#SERVERS[@]}"); do
      pending=$(curl -sf "http://127.0.0.1:$((3980 + i))/readyz" | sed -n 's/.*"pending":\([0-9]*\).*/\1/p' || true)
      [ "$pending" = 0 ] && return
    done
    sleep 0.1
  done
  log "the outbox is not drained after 120 s"
}
# lt NAME ARGS...: one load run over $URLS; prints name, req/s, p99, result.
lt() {
  local name=$1; shift
  bin/loadtest -url "$URLS" -json "$@" > "$OUT/$name.json" || true
  local rps p99 pass
  rps=$(grep -o '"rps":[0-9.]*' "$OUT/$name.json" | head -n 1 | cut -d: -f2)
  p99=$(grep -o '"p99":[0-9.]*' "$OUT/$name.json" | head -n 1 | cut -d: -f2)
  pass=$(grep -q '"ok":false' "$OUT/$name.json" && echo FAIL || echo PASS)
  printf '%-24s %8.0f req/s  p99 %7.1f ms  %s\n' "$name" "${rps:-0}" "${p99:-0}" "$pass"
}
verify() {
  local out
  out=$(DATABASE_URL=$(dburl "$1") bin/ledgerd verify 2>&1 | tail -n 1) || out="FAILED: $out"
  printf '%-24s %s\n' "verify-$2" "$out"
}
# batches: the write transactions of the running servers so far, and the
# requests they applied (ledger_write_batch_size's count and sum, summed
# over the processes).
batches() {
  local i
  for i in $(seq "${#SERVERS[@]}"); do curl -sf "http://127.0.0.1:$((3980 + i))/metrics"; done |
    awk '/^ledger_write_batch_size_count/ {c += $2} /^ledger_write_batch_size_sum/ {s += $2} END {printf "%d %d\n", c, s}'
}
# measured NAME ARGS...: lt, then the write transactions per second and
# their mean batch (requests per transaction) over the run.
measured() {
  local c0 s0 c1 s1
  read -r c0 s0 <<< "$(batches)"
  lt "$@"
  read -r c1 s1 <<< "$(batches)"
  awk -v c=$((c1 - c0)) -v s=$((s1 - s0)) -v d="$SECS" \
    'BEGIN { printf "%-24s %8.0f write tx/s  mean batch %.1f requests\n", "", c / d, (c ? s / c : 0) }'
}
# scenarios PORT TAG: hot then spread on the running servers.
scenarios() {
  measured "$2-hot" -scenario hot-sustained -duration "$DUR"
  wait_drained
  measured "$2-spread" -scenario spread -users "$SPREAD_USERS" -duration "$DUR" -n 100000000
  wait_drained
}

# (b) 1, 2 and 4 replicas on one database ---------------------------------
for n in 1 2 4; do
  [ "${SCALING_ONLY:-}" = standby ] && break
  log "$n ledgerd process(es) on one database"
  fresh_db 5432
  start_servers 5432 "$n"
  scenarios 5432 "replicas-$n"
  stop_servers
  verify 5432 "replicas-$n"
done
$PSQL -h 127.0.0.1 -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null

# (c) a synchronous standby ---------------------------------------------
log "primary on $PRIMARY_PORT"
CLUSTERS+=("$STANDBY_PORT" "$PRIMARY_PORT")
scripts/pg-cluster.sh primary "$PRIMARY_PORT" >/dev/null
fresh_db "$PRIMARY_PORT"
start_servers "$PRIMARY_PORT" 1
scenarios "$PRIMARY_PORT" "primary-alone"
stop_servers
verify "$PRIMARY_PORT" "primary-alone"
log "synchronous standby on $STANDBY_PORT"
scripts/pg-cluster.sh standby "$PRIMARY_PORT" "$STANDBY_PORT" --sync >/dev/null
$PSQL -h 127.0.0.1 -p "$PRIMARY_PORT" -d postgres -At -c "SELECT 'sync_state=' || sync_state FROM pg_stat_replication"
fresh_db "$PRIMARY_PORT"
start_servers "$PRIMARY_PORT" 1
scenarios "$PRIMARY_PORT" "primary-sync-standby"
stop_servers
verify "$PRIMARY_PORT" "primary-sync-standby"
log "synchronous standby, MAX_INFLIGHT=16"
fresh_db "$PRIMARY_PORT"
INFLIGHT=16 start_servers "$PRIMARY_PORT" 1
scenarios "$PRIMARY_PORT" "primary-sync-inflight16"
stop_servers
verify "$PRIMARY_PORT" "primary-sync-inflight16"
log "mixed reads and writes, without and with the standby as read replica"
for replica in no yes; do
  fresh_db "$PRIMARY_PORT"
  READ_URL=""
  [ "$replica" = yes ] && READ_URL=$(dburl "$STANDBY_PORT")
  READ_URL=$READ_URL start_servers "$PRIMARY_PORT" 1
  measured "mixed-read-replica-$replica" -scenario mixed -users "$SPREAD_USERS" -duration "$DUR" -n 100000000
  [ "$replica" = yes ] && curl -sf "http://127.0.0.1:3981/readyz" | grep -o '"replica":{[^}]*}' || true
  wait_drained
  stop_servers
done
log "done"
