#!/usr/bin/env bash
# How long writes through pgmarina stop when the primary dies (README "Status", Failover). A
# throwaway primary and two streaming replicas (tests/fixture/pg-cluster) sit behind one
# pgmarina whose watcher probes every host every 100 ms. One writer inserts through pgmarina
# in a tight loop: a single psql session fed `INSERT ...` lines by `yes`, each row stamped with
# the server's clock_timestamp() and the port of the node that wrote it. Each run:
#
#   1. note the time, then `pg-cluster stop --immediate` the primary (a crash, no checkpoint);
#   2. `pg-cluster promote` the next node at once (no leader election, no ttl);
#   3. the downtime is the first row the new primary wrote minus the time of step 1, read back
#      from the table (one clock: everything runs on this host);
#   4. `pg-cluster follow` the other replica and the old primary to the new primary, and wait
#      until pgmarina sees one primary and two healthy replicas again.
#
# The promotion's own moment ("archive recovery complete" in the new primary's log) splits the
# downtime into PostgreSQL's part and pgmarina's (detection and switch).
#
# A node that was stopped refused one of pgmarina's logins, and pgmarina's pool for it answers
# every client with that error for server_login_retry (15 s) unless it still has servers there.
# The node is promoted two runs later, so by default a run waits until the next primary's
# stop is server_login_retry + 1 s old: each failover is measured on its own. --back-to-back
# skips that wait and shows what a second failover soon after the first costs.
#
# Usage: bench/failover.sh [--runs N] [--back-to-back] [BUILD_DIR] (default: 10 runs, build),
# as root or as a user who can run PostgreSQL. Needs psql and PostgreSQL 15
# (etc/setup-debian.sh). Writes bench/results/failover.md (failover-back-to-back.md) and prints
# it; 10 runs take about 2 minutes (1 minute back to back).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
runs=10 build=$root/build back_to_back=
while (($#)); do
    case $1 in
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --runs=*) runs=${1#--runs=}; shift ;;
        --back-to-back) back_to_back=1; shift ;;
        -*) echo "failover.sh: unknown option '$1'" >&2; exit 2 ;;
        *) build=$1; shift ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "failover.sh: --runs takes a positive number" >&2; exit 2; }
interval=100ms login_retry=15
pgmarina=$build/proxy/pgmarina
pg_cluster=$root/tests/fixture/pg-cluster
result=$root/bench/results/failover${back_to_back:+-back-to-back}.md
[[ -x $pgmarina ]] || { echo "failover.sh: no $pgmarina; build first" >&2; exit 1; }

# tmpfs when there is one: pg-cluster starts and clones nodes several times faster there.
work=$(mktemp -d -p "$([[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
chmod 755 "$work" # pg-cluster runs PostgreSQL as the OS user postgres when we are root
pgmarina_pid='' writer_pid=''
cleanup() {
    [[ -n $writer_pid ]] && kill "$writer_pid" 2>/dev/null && wait "$writer_pid" || true
    [[ -n $pgmarina_pid ]] && kill "$pgmarina_pid" 2>/dev/null && wait "$pgmarina_pid" || true
    "$pg_cluster" destroy "$work/cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"$pg_cluster" start "$work/cluster" --replicas 2 >/dev/null
# shellcheck disable=SC1091
source "$work/cluster/cluster.env"
nodes=(node0 node1 node2)
node_ports=("$NODE0_PORT" "$NODE1_PORT" "$NODE2_PORT")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/pgmarina.toml" <<TOML
[pgmarina]
listen = ["127.0.0.1:$port"]
unix_socket_dir = ""
pool_mode = "transaction"
log_connections = false
log_disconnections = false
admin_users = ["$SUPERUSER"]
health_check_user = "$SUPERUSER"
health_check_password = "$SUPERUSER_PASSWORD"
health_check_interval = "$interval"
server_login_retry = $login_retry
[metrics]
listen = ""
[databases.$DATABASE]
hosts = ["127.0.0.1:$NODE0_PORT", "127.0.0.1:$NODE1_PORT", "127.0.0.1:$NODE2_PORT"]
[users.$SCRAM_USER]
password = "$SCRAM_PASSWORD"
[users.$SUPERUSER]
password = "$SUPERUSER_PASSWORD"
TOML
"$pgmarina" -c "$work/pgmarina.toml" 2>"$work/pgmarina.log" &
pgmarina_pid=$!
for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
done

export PGHOST=127.0.0.1 PGUSER=$SCRAM_USER PGPASSWORD=$SCRAM_PASSWORD PGDATABASE=$DATABASE
on_node() { PGPORT=${node_ports[$1]} psql -X -At -c "$2"; }
admin() { PGPORT=$port PGUSER=$SUPERUSER PGPASSWORD=$SUPERUSER_PASSWORD \
    psql -X -At -d pgbouncer -c "$1"; }
# Waits until pgmarina's watcher sees PRIMARY as the primary and every host up.
await_topology() {
    local expect=${node_ports[$1]} _
    for _ in $(seq 300); do
        admin "SHOW HOSTS" | awk -F'|' -v p="$expect" '
            $5 == "up" { up++ } $4 == "primary" { primaries++; if ($3 == p) ok = 1 }
            END { exit !(up == 3 && primaries == 1 && ok) }' && return 0
        sleep 0.1
    done
    echo "failover.sh: pgmarina does not see ${nodes[$1]} as primary with 3 hosts up" >&2
    admin "SHOW HOSTS" >&2
    exit 1
}

on_node 0 "CREATE TABLE beats (id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(), port int NOT NULL)" >/dev/null
await_topology 0

# The writer: one psql session through pgmarina (transaction pooling keeps a client across a
# failover), which goes on after errors. Should pgmarina close it, a new one starts at once,
# as an application's pool would reconnect; the report counts those reconnections.
writer() {
    local psql_pid=
    trap '[[ -n $psql_pid ]] && kill "$psql_pid" 2>/dev/null; exit 0' TERM
    while :; do
        yes "INSERT INTO beats (port) VALUES (inet_server_port());" |
            PGPORT=$port psql -X -q >/dev/null 2>>"$work/writer.err" &
        psql_pid=$!
        wait "$psql_pid" || true
        echo "writer: psql ended, reconnecting" >>"$work/writer.err"
    done
}
: >"$work/writer.err"
writer &
writer_pid=$!

# Epoch seconds of the first row that node NODE wrote after epoch seconds SINCE; empty if none.
first_write() {
    on_node "$1" "SELECT extract(epoch FROM min(at)) FROM beats
        WHERE port = ${node_ports[$1]} AND at > to_timestamp($2)" 2>/dev/null || true
}
# Epoch seconds of the promotion's end in node NODE's log after epoch seconds SINCE.
promoted_at() {
    local line
    while read -r line; do
        local stamp
        stamp=$(date -d "${line%% \[*}" +%s.%N)
        if awk -v a="$stamp" -v b="$2" 'BEGIN { exit !(a > b) }'; then echo "$stamp"; return; fi
    done < <(grep 'archive recovery complete' "$work/cluster/${nodes[$1]}/postgres.log")
}
# Errors the writer was sent so far, and how often it had to reconnect.
writer_trouble() {
    echo "$(grep -c -E 'ERROR:|FATAL:' "$work/writer.err")" \
        "$(grep -c '^writer: psql ended' "$work/writer.err")"
}
seconds_since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
ms() { # milliseconds from epoch seconds $2 to $1; n/a when one is missing
    if [[ -z $1 || -z $2 ]]; then echo n/a; return; fi
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (a - b) * 1000 }'
}

# run old new stop→write stop→promoted promoted→write stop_command errors reconnects stop_at
rows=$work/rows
primary=0
stopped_at=(0 0 0) # when each node was last stopped
started=${EPOCHREALTIME/,/.}
for run in $(seq "$runs"); do
    next=$(((primary + 1) % 3)) other=$(((primary + 2) % 3))
    if [[ -z $back_to_back ]]; then
        pause=$(awk -v s="${stopped_at[$next]}" -v n="${EPOCHREALTIME/,/.}" -v r="$login_retry" \
            'BEGIN { p = s + r + 1 - n; print (p > 0 ? p : 0) }')
        sleep "$pause"
    fi
    # The writer is writing on the current primary before the crash.
    for _ in $(seq 100); do
        [[ -n $(first_write "$primary" "${EPOCHREALTIME/,/.} - 0.2") ]] && break
        sleep 0.05
    done
    read -r errors_before reconnects_before < <(writer_trouble)

    stop=${EPOCHREALTIME/,/.}
    stopped_at[primary]=$stop
    "$pg_cluster" stop "$work/cluster" "${nodes[$primary]}" --immediate >/dev/null
    stopped=${EPOCHREALTIME/,/.}
    "$pg_cluster" promote "$work/cluster" "${nodes[$next]}" >/dev/null

    first=
    for _ in $(seq 600); do
        first=$(first_write "$next" "$stop")
        [[ -n $first ]] && break
        sleep 0.05
    done
    [[ -n $first ]] || { echo "failover.sh: run $run: no write on ${nodes[$next]} within 30 s" >&2;
        cat "$work/writer.err" >&2; exit 1; }
    promoted=$(promoted_at "$next" "$stop")
    read -r errors reconnects < <(writer_trouble)
    echo "$run ${nodes[$primary]} ${nodes[$next]} $(ms "$first" "$stop") $(ms "$promoted" "$stop") \
$(ms "$first" "$promoted") $(ms "$stopped" "$stop") $((errors - errors_before)) \
$((reconnects - reconnects_before)) $(seconds_since "$stop" "$started")" \
        >>"$rows"
    printf 'run %2s  %s -> %s  first write %5s ms after the stop\n' "$run" "${nodes[$primary]}" \
        "${nodes[$next]}" "$(ms "$first" "$stop")" >&2

    "$pg_cluster" follow "$work/cluster" "${nodes[$other]}" "${nodes[$next]}" >/dev/null
    "$pg_cluster" follow "$work/cluster" "${nodes[$primary]}" "${nodes[$next]}" >/dev/null
    primary=$next
    await_topology "$primary"
done
kill "$writer_pid" 2>/dev/null && wait "$writer_pid" || true
writer_pid=
rows_written=$(on_node "$primary" "SELECT count(*) FROM beats")

# min / median / max of column COL of the rows file
stats() {
    awk -v c="$1" '$c != "n/a" { print $c }' "$rows" | sort -n | awk '{ v[NR] = $1 }
        END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              if (NR) printf "%d | %.0f | %d", v[1], m, v[NR]; else printf "n/a | n/a | n/a" }'
}

mkdir -p "$(dirname "$result")"
{
    echo "# Failover: primary crash to first write through pgmarina"
    echo
    echo "Written by \`bench/failover.sh --runs $runs${back_to_back:+ --back-to-back}\` on" \
        "$(date -u '+%Y-%m-%d %H:%M UTC'), pgmarina" \
        "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)."
    echo
    echo "**Machine: $(nproc) CPU cores shared by everything in the run** (the writer, pgmarina," \
        "three PostgreSQL 15 servers, pg_basebackup between runs; load average" \
        "$(cut -d' ' -f1-3 /proc/loadavg) at the end)."
    echo
    echo "Setup: \`pg-cluster start --replicas 2\` (fsync off), one pgmarina in transaction" \
        "pooling with the three nodes as \`hosts\` of database app, **\`health_check_interval =" \
        "\"$interval\"\`**, \`health_check_user = \"postgres\"\`, \`server_login_retry =" \
        "$login_retry\` (the default), every other setting at its default" \
        "(\`health_check_timeout = \"2s\"\`, \`query_wait_timeout = \"2min\"\`). One writer:" \
        "a single psql session through pgmarina running" \
        "\`INSERT INTO beats (port) VALUES (inet_server_port())\` back to back, the row stamped" \
        "by the server with \`clock_timestamp()\`. Each run stops the primary with" \
        "\`pg-cluster stop --immediate\` and at once promotes the next node with" \
        "\`pg-cluster promote\`, then rebuilds the other two nodes as standbys of the new" \
        "primary (\`pg-cluster follow\`) so every run starts from one primary and two" \
        "streaming replicas."
    echo
    if [[ -z $back_to_back ]]; then
        echo "Runs are spaced so that the node about to be promoted was last stopped more than" \
            "server_login_retry + 1 s earlier: each failover is measured on its own, not" \
            "within server_login_retry of an earlier one on the same node (see" \
            "\`--back-to-back\`)."
    else
        echo "**Back to back:** each run starts as soon as the previous one has rebuilt its" \
            "standbys, so the node promoted was itself stopped two runs (about 10 s) earlier," \
            "within server_login_retry."
    fi
    echo
    echo "- **stop → first write**: from just before \`pg-cluster stop --immediate\` to the" \
        "clock_timestamp() of the first row the new primary wrote: what the application sees."
    echo "- **stop → promoted**: to \"archive recovery complete\" in the new primary's log," \
        "when PostgreSQL accepts writes there (the stop command and the promotion)."
    echo "- **promoted → first write**: the rest, pgmarina's own detection and switch."
    echo
    echo "For comparison: Patroni-managed deployments promise a failover in under 30 s with" \
        "\`ttl = 30\`. The promotion here is immediate (no leader election, no ttl to wait" \
        "out), so these numbers measure pgmarina's own detection and switch time on top of a" \
        "crash and a promotion, not what a managed cluster takes end to end."
    echo
    echo "## Summary ($runs runs, milliseconds)"
    echo
    echo "| measure | min | median | max |"
    echo "|---|---:|---:|---:|"
    echo "| **stop → first write** | $(stats 4) |"
    echo "| stop → promoted | $(stats 5) |"
    echo "| promoted → first write | $(stats 6) |"
    echo
    echo "## Every run"
    echo
    echo "| run | stop at (s) | old primary → new | stop → first write (ms) |" \
        "stop → promoted (ms) | promoted → first write (ms) | stop command (ms) |" \
        "writer errors | writer reconnects |"
    echo "|---:|---:|---|---:|---:|---:|---:|---:|---:|"
    awk '{ printf "| %s | %s | %s → %s | %s | %s | %s | %s | %s | %s |\n", $1, $10, $2, $3, $4,
        $5, $6, $7, $8, $9 }' "$rows"
    echo
    echo "Stop at: seconds since the first run began. Writer errors: ERROR and FATAL messages" \
        "the writer got during the run. Writer reconnects: how often its connection was" \
        "closed, so that a new psql had to log in (README: a client whose transaction was on" \
        "the lost server gets 08006 and keeps its connection):" \
        "$(awk '{ n += $9 } END { print n + 0 }' "$rows") in $runs runs. The writer inserted" \
        "$rows_written rows in all."
    if [[ -s $work/writer.err ]]; then
        echo
        echo "What the writer saw, counted (digits replaced by N):"
        echo
        echo '```'
        sed -E 's/[0-9]+/N/g' "$work/writer.err" | sort | uniq -c | sort -rn
        echo '```'
    fi
    echo
    echo "## pgmarina's failed server logins"
    echo
    echo "From its log, seconds since the first run began. For server_login_retry after one," \
        "a pool with no server left answers its clients with that error instead of trying" \
        "the host again."
    echo
    echo '```'
    grep 'login failed' "$work/pgmarina.log" | while read -r day time zone rest; do
        at=$(date -d "$day $time $zone" +%s.%N)
        printf '%7s  %s\n' "$(seconds_since "$at" "$started")" "${rest#*] }"
    done | sed -e "s/127.0.0.1:$NODE0_PORT/node0/g" -e "s/127.0.0.1:$NODE1_PORT/node1/g" \
        -e "s/127.0.0.1:$NODE2_PORT/node2/g"
    echo '```'
} >"$result"
cat "$result"
