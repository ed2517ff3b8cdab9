#!/usr/bin/env bash
# What named prepared statements buy through pgmarina (issue 5; PgBouncer 1.21 claims "15% to
# 250%" for max_prepared_statements, reference.md 3 step 11). In one run, on a throwaway
# PostgreSQL (tests/fixture/pg-cluster) and a pgmarina in transaction pooling in front of it:
#
#   prepared / simple     pgbench -S -M prepared vs -M simple, both through pgmarina
#   pgmarina / direct     pgbench -S -M prepared through pgmarina vs straight to PostgreSQL
#
# Usage: bench/prepared.sh [BUILD_DIR] (default: build). Tunables in the environment: CLIENTS
# (default 20), POOL (10), SECONDS_EACH (10), SCALE (10). Needs pgbench and PostgreSQL 15
# (etc/setup-debian.sh); prints the tps of each run and the two ratios.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
clients=${CLIENTS:-20} pool=${POOL:-10} seconds=${SECONDS_EACH:-10} scale=${SCALE:-10}
pgmarina=$build/proxy/pgmarina
[[ -x $pgmarina ]] || { echo "prepared.sh: no $pgmarina; build first" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work" # pg-cluster runs PostgreSQL as the OS user postgres when we are root
pgmarina_pid=
cleanup() {
    [[ -n $pgmarina_pid ]] && kill "$pgmarina_pid" 2>/dev/null && wait "$pgmarina_pid" || true
    "$root/tests/fixture/pg-cluster" destroy "$work/cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"$root/tests/fixture/pg-cluster" start "$work/cluster" --replicas 0 >/dev/null
# shellcheck disable=SC1091
source "$work/cluster/cluster.env"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/pgmarina.toml" <<TOML
[pgmarina]
listen = ["127.0.0.1:$port"]
unix_socket_dir = ""
pool_mode = "transaction"
log_connections = false
log_disconnections = false
[databases.$DATABASE]
pool_size = $pool
hosts = ["127.0.0.1:$PRIMARY_PORT"]
[users.$SCRAM_USER]
password = "$SCRAM_PASSWORD"
TOML
"$pgmarina" -c "$work/pgmarina.toml" 2>"$work/pgmarina.log" &
pgmarina_pid=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

export PGHOST=127.0.0.1 PGUSER=$SCRAM_USER PGPASSWORD=$SCRAM_PASSWORD PGDATABASE=$DATABASE
PGPORT=$PRIMARY_PORT pgbench -i -q -s "$scale" >/dev/null 2>&1

# tps of one pgbench -S run; -j = clients, since pgbench's first PQprepare of each client blocks
# its thread (see tests/integration/prepared_drivers_test.cpp).
tps() {
    PGPORT=$1 pgbench -S -M "$2" -c "$clients" -j "$clients" -T "$seconds" --no-vacuum 2>&1 |
        awk '/^tps/ { print $3 }'
}
simple=$(tps "$port" simple)
prepared=$(tps "$port" prepared)
direct=$(tps "$PRIMARY_PORT" prepared)

printf '%-34s %10s tps\n' "pgmarina, -M simple" "$simple" "pgmarina, -M prepared" "$prepared" \
    "PostgreSQL direct, -M prepared" "$direct"
awk -v s="$simple" -v p="$prepared" -v d="$direct" 'BEGIN {
    printf "prepared / simple through pgmarina:  %.2f\n", p / s
    printf "pgmarina / direct with -M prepared:  %.2f\n", p / d
}'
