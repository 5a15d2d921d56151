#!/usr/bin/env bash
# pg-cluster.sh: throwaway PostgreSQL clusters for tests, on ports of their
# own, with Debian's postgresql-common tools (pg_createcluster, pg_ctlcluster,
# pg_basebackup, pg_dropcluster). No Docker. Every cluster it makes is named
# ldgt_<port>, so it never touches the machine's main cluster (or any cluster
# not named ldgt_*). Clusters are made with --start-conf=manual: they never
# start at boot.
#
# Usage:
#   scripts/pg-cluster.sh primary PORT
#       create and start a primary: trust auth for local and 127.0.0.1
#       (replication included), wal_level replica, hot_standby on.
#   scripts/pg-cluster.sh standby PRIMARY_PORT PORT [--sync]
#       create a streaming standby of the primary on PRIMARY_PORT with
#       pg_basebackup -c fast -R and the replication slot slot_PORT, start it
#       and wait until it streams. With --sync, the primary then names it in
#       synchronous_standby_names (only now: set before the standby exists,
#       CREATE DATABASE on the primary would hang) and waits until it is sync.
#   scripts/pg-cluster.sh promote PORT          promote a standby; waits until it accepts writes
#   scripts/pg-cluster.sh stop PORT [fast|immediate]   (default fast)
#   scripts/pg-cluster.sh start PORT
#   scripts/pg-cluster.sh drop PORT             stop (immediate) and remove the cluster
#   scripts/pg-cluster.sh drop-all              drop every ldgt_* cluster (leftovers of killed tests)
#   scripts/pg-cluster.sh url PORT [DB]         postgres://postgres@127.0.0.1:PORT/DB?sslmode=disable
#   scripts/pg-cluster.sh list                  pg_lsclusters, ldgt_* clusters only
#
# A command that fails leaves no half-made cluster behind. primary and
# standby exit 3 when the port is taken by another ldgt_ cluster (being
# made concurrently, or left over): pick another port. Needs root or the
# postgres user (pg_createcluster's requirement).
set -euo pipefail

die() { echo "pg-cluster: $*" >&2; exit 1; }

for tool in pg_createcluster pg_ctlcluster pg_dropcluster pg_lsclusters; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found: install Debian's postgresql-common and a postgresql-NN package (apt-get install postgresql)"
done
VERSION=${PG_CLUSTER_VERSION:-$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)}
[ -n "$VERSION" ] || die "no PostgreSQL version under /etc/postgresql"
BIN=/usr/lib/postgresql/$VERSION/bin
[ -x "$BIN/pg_basebackup" ] || die "$BIN/pg_basebackup not found"

name() { echo "ldgt_$1"; }
confdir() { echo "/etc/postgresql/$VERSION/$(name "$1")"; }
datadir() { echo "/var/lib/postgresql/$VERSION/$(name "$1")"; }
exists() { [ -d "$(confdir "$1")" ]; }
check_port() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 1024 ] && [ "$1" -lt 65536 ] || die "bad port: $1"; }

# as_owner runs a command as the postgres user (the clusters' owner).
as_owner() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# sql PORT QUERY: runs QUERY on the cluster's postgres database, unaligned.
sql() {
	as_owner "$BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"
}

# wait_for PORT QUERY SECONDS: waits until QUERY answers t.
wait_for() {
	local deadline=$((SECONDS + $3))
	while [ $SECONDS -lt $deadline ]; do
		[ "$(sql "$1" "$2" 2>/dev/null || true)" = t ] && return 0
		sleep 0.1
	done
	die "timed out after $3 s on port $1 waiting for: $2"
}

ctl() { pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$(name "$1")" "${@:2}"; }

# Claims make creating a cluster on a port atomic between concurrent
# callers (parallel test binaries): mkdir succeeds for one of them only.
CLAIMS=/var/lib/postgresql/ldgt-claims

# create PORT: pg_createcluster with this script's settings, not started.
# It exits 3 when the port is someone else's (claimed, or a cluster exists).
create() {
	local port=$1
	mkdir -p "$CLAIMS"
	mkdir "$CLAIMS/$port" 2>/dev/null || { echo "pg-cluster: port $port is claimed by another cluster" >&2; exit 3; }
	if exists "$port"; then
		rmdir "$CLAIMS/$port"
		echo "pg-cluster: cluster $(name "$port") exists already" >&2
		exit 3
	fi
	if ! out=$(pg_createcluster --start-conf=manual -p "$port" "$VERSION" "$(name "$port")" -- --no-sync 2>&1); then
		cmd_drop "$port" >/dev/null 2>&1 || true
		die "pg_createcluster on port $port: $out"
	fi
	cat >"$(confdir "$port")/pg_hba.conf" <<-EOF
		# written by scripts/pg-cluster.sh: a throwaway test cluster
		local all         all                trust
		local replication all                trust
		host  all         all  127.0.0.1/32  trust
		host  replication all  127.0.0.1/32  trust
	EOF
	cat >"$(confdir "$port")/conf.d/ldgt.conf" <<-EOF
		# written by scripts/pg-cluster.sh
		cluster_name = '$(name "$port")'
		listen_addresses = '127.0.0.1'
		max_connections = 100
		shared_buffers = 32MB
		wal_level = replica
		max_wal_senders = 10
		max_replication_slots = 10
		wal_keep_size = 64MB
		hot_standby = on
		hot_standby_feedback = on
		wal_receiver_status_interval = 1s
		logging_collector = off
	EOF
}

cmd_primary() {
	local port=$1
	check_port "$port"
	create "$port"
	UNDO_PORT=$port
	ctl "$port" start
	wait_for "$port" "SELECT true" 30
	UNDO_PORT=
}

cmd_standby() {
	local primary=$1 port=$2 sync=${3:-}
	check_port "$primary"
	check_port "$port"
	[ -z "$sync" ] || [ "$sync" = --sync ] || die "unknown option: $sync"
	create "$port"
	UNDO_PORT=$port UNDO_PRIMARY=$primary
	local data
	data=$(datadir "$port")
	find "$data" -mindepth 1 -delete
	# -C -S: a slot named after this standby, so that the primary keeps its
	# WAL, and a standby later copied from this one does not reuse its name.
	as_owner "$BIN/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres -D "$data" \
		-c fast -X stream -R -C -S "slot_$port" --no-sync
	# The copied postgresql.auto.conf may name synchronous standbys of the
	# primary (ALTER SYSTEM below); a promoted standby must not wait for them.
	sed -i '/^synchronous_standby_names/d' "$data/postgresql.auto.conf"
	ctl "$port" start
	wait_for "$primary" "SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = '$(name "$port")' AND state = 'streaming')" 60
	if [ "$sync" = --sync ]; then
		UNDO_SYNC=1
		sql "$primary" "ALTER SYSTEM SET synchronous_standby_names = '\"$(name "$port")\"'" >/dev/null
		sql "$primary" "SELECT pg_reload_conf()" >/dev/null
		wait_for "$primary" "SELECT EXISTS (SELECT 1 FROM pg_stat_replication WHERE application_name = '$(name "$port")' AND sync_state = 'sync')" 30
	fi
	UNDO_PORT=
}

cmd_promote() {
	local port=$1
	check_port "$port"
	exists "$port" || die "no cluster $(name "$port")"
	ctl "$port" promote
	wait_for "$port" "SELECT NOT pg_is_in_recovery()" 60
}

cmd_stop() {
	local port=$1 mode=${2:-fast}
	check_port "$port"
	case "$mode" in fast | immediate | smart) ;; *) die "bad stop mode: $mode (fast or immediate)" ;; esac
	exists "$port" || die "no cluster $(name "$port")"
	ctl "$port" stop -m "$mode"
}

cmd_start() {
	local port=$1
	check_port "$port"
	exists "$port" || die "no cluster $(name "$port")"
	ctl "$port" start
	wait_for "$port" "SELECT true" 60
}

cmd_drop() {
	local port=$1
	check_port "$port"
	if ! exists "$port"; then
		rmdir "$CLAIMS/$port" 2>/dev/null || true
		return 0
	fi
	ctl "$port" stop -m immediate >/dev/null 2>&1 || true
	# pg_dropcluster removes only the files it made itself.
	rm -f "$(confdir "$port")/conf.d/ldgt.conf"
	if [ -f "$(confdir "$port")/postgresql.conf" ]; then pg_dropcluster "$VERSION" "$(name "$port")"; fi
	rm -rf "$(confdir "$port")" "$(datadir "$port")"
	rmdir "$CLAIMS/$port" 2>/dev/null || true
}

cmd_drop_all() {
	local dir
	for dir in /etc/postgresql/"$VERSION"/ldgt_* "$CLAIMS"/*; do
		[ -d "$dir" ] || continue
		dir=${dir##*/}
		cmd_drop "${dir#ldgt_}"
	done
}

# undo drops a half-made cluster (UNDO_PORT), its replication slot on
# UNDO_PRIMARY and, if set already, the primary's synchronous_standby_names,
# when a command fails midway (set -e ends the script).
UNDO_PORT= UNDO_PRIMARY= UNDO_SYNC=
undo() {
	[ -n "$UNDO_PORT" ] || return 0
	cmd_drop "$UNDO_PORT" >/dev/null 2>&1 || true
	if [ -n "$UNDO_SYNC" ]; then # else the primary's commits wait forever
		sql "$UNDO_PRIMARY" "ALTER SYSTEM RESET synchronous_standby_names" >/dev/null 2>&1 || true
		sql "$UNDO_PRIMARY" "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
	fi
	[ -z "$UNDO_PRIMARY" ] ||
		sql "$UNDO_PRIMARY" "SELECT pg_drop_replication_slot('slot_$UNDO_PORT') FROM pg_replication_slots WHERE slot_name = 'slot_$UNDO_PORT'" >/dev/null 2>&1 || true
}
trap undo EXIT

case "${1:-}" in
primary) [ $# -eq 2 ] || die "usage: $0 primary PORT"; cmd_primary "$2" ;;
standby) [ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: $0 standby PRIMARY_PORT PORT [--sync]"; cmd_standby "$2" "$3" "${4:-}" ;;
promote) [ $# -eq 2 ] || die "usage: $0 promote PORT"; cmd_promote "$2" ;;
stop) [ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: $0 stop PORT [fast|immediate]"; cmd_stop "$2" "${3:-fast}" ;;
start) [ $# -eq 2 ] || die "usage: $0 start PORT"; cmd_start "$2" ;;
drop) [ $# -eq 2 ] || die "usage: $0 drop PORT"; cmd_drop "$2" ;;
drop-all) cmd_drop_all ;;
url) [ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: $0 url PORT [DB]"; check_port "$2"; echo "postgres://postgres@127.0.0.1:$2/${3:-postgres}?sslmode=disable" ;;
list) pg_lsclusters | awk 'NR == 1 || $2 ~ /^ldgt_/' ;;
*) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
