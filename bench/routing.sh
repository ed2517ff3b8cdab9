#!/usr/bin/env bash
# What read/write routing buys for reads (README "Status", Read/write routing). One pgmarina in
# front of a throwaway primary and two streaming replicas (tests/fixture/pg-cluster) serves the
# PostgreSQL database app under two names:
#
#   app_primary   routing = "primary_only"       every transaction on the primary
#   app_split     routing = "read_write_split"   read-only transactions on the replicas
#
# pgbench -S (select only) runs against each name with -M simple and -M extended, in ROUNDS
# rounds that alternate the two names, so both see the same machine at about the same time.
# pg_stat_database xact_commit deltas on every node show where the transactions ran; after each
# run, RECONNECT closes pgmarina's servers so that their backends exit and flush those counters.
#
# Usage: bench/routing.sh [BUILD_DIR] (default: build), as root or as a user who can run
# PostgreSQL. Tunables in the environment: CLIENTS (default 20), JOBS (2), POOL (20),
# SECONDS_EACH (10), ROUNDS (3), SCALE (10), WORKERS (2). Needs pgbench and PostgreSQL 15
# (etc/setup-debian.sh). Writes bench/results/routing.md and prints it; takes about 2.5 minutes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
clients=${CLIENTS:-20} jobs=${JOBS:-2} pool=${POOL:-20} seconds=${SECONDS_EACH:-10}
rounds=${ROUNDS:-3} scale=${SCALE:-10} workers=${WORKERS:-2}
pgmarina=$build/proxy/pgmarina
pg_cluster=$root/tests/fixture/pg-cluster
result=$root/bench/results/routing.md
[[ -x $pgmarina ]] || { echo "routing.sh: no $pgmarina; build first" >&2; exit 1; }

# tmpfs when there is one: pg-cluster starts and clones nodes several times faster there.
work=$(mktemp -d -p "$([[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
chmod 755 "$work" # pg-cluster runs PostgreSQL as the OS user postgres when we are root
pgmarina_pid=
cleanup() {
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
hosts="\"127.0.0.1:$NODE0_PORT\", \"127.0.0.1:$NODE1_PORT\", \"127.0.0.1:$NODE2_PORT\""
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/pgmarina.toml" <<TOML
[pgmarina]
listen = ["127.0.0.1:$port"]
unix_socket_dir = ""
workers = $workers
pool_mode = "transaction"
default_pool_size = $pool
log_connections = false
log_disconnections = false
admin_users = ["$SUPERUSER"]
health_check_user = "$SUPERUSER"
health_check_password = "$SUPERUSER_PASSWORD"
[metrics]
listen = ""
[databases.app_primary]
dbname = "$DATABASE"
hosts = [$hosts]
routing = "primary_only"
[databases.app_split]
dbname = "$DATABASE"
hosts = [$hosts]
routing = "read_write_split"
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
# As superuser postgres on node K's database postgres, so these queries count in no app row.
on_node() { PGPORT=${node_ports[$1]} PGUSER=$SUPERUSER PGPASSWORD=$SUPERUSER_PASSWORD \
    psql -X -At -d postgres -c "$2"; }
admin() { PGPORT=$port PGUSER=$SUPERUSER PGPASSWORD=$SUPERUSER_PASSWORD \
    psql -X -d pgbouncer "$@"; }

PGPORT=$NODE0_PORT pgbench -i -q -s "$scale" >/dev/null 2>&1
# Both replicas replay the initialisation before anything reads from them.
target=$(on_node 0 "SELECT pg_current_wal_lsn()")
for node in 1 2; do
    for _ in $(seq 300); do
        [[ $(on_node "$node" "SELECT pg_last_wal_replay_lsn() >= '$target'") == t ]] && break
        sleep 0.1
    done
    [[ $(on_node "$node" "SELECT pg_last_wal_replay_lsn() >= '$target'") == t ]] ||
        { echo "routing.sh: ${nodes[$node]} did not replay the pgbench tables" >&2; exit 1; }
done
# ... and until pgmarina's watcher has seen one primary and two healthy replicas.
for _ in $(seq 100); do
    [[ $(admin -At -c "SHOW HOSTS" | awk -F'|' '$1 == "app_split" && $5 == "up" { n++ }
        END { print n + 0 }') == 3 ]] && break
    sleep 0.1
done

commits() { # xact_commit of database app on every node, space separated
    local node values=()
    for node in 0 1 2; do
        values+=("$(on_node "$node" "SELECT xact_commit FROM pg_stat_database
            WHERE datname = '$DATABASE'")")
    done
    echo "${values[*]}"
}
# Closes pgmarina's servers and waits until their backends are gone: a backend flushes its
# statistics when it exits, an idle one only every 10 s or so.
flush_servers() {
    admin -q -c "RECONNECT" >/dev/null
    local node
    for node in 0 1 2; do
        for _ in $(seq 100); do
            [[ $(on_node "$node" "SELECT count(*) FROM pg_stat_activity
                WHERE datname = '$DATABASE' AND usename = '$SCRAM_USER'") == 0 ]] && break
            sleep 0.05
        done
    done
    sleep 0.2
}

# CPU time pgmarina has used so far, in clock ticks (utime + stime of /proc/PID/stat).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pgmarina_pid/stat"; }
tick_us=$((1000000 / $(getconf CLK_TCK)))

runs=$work/runs # round database protocol tps transactions node0 node1 node2 pgmarina_ticks
flush_servers
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
    for protocol in simple extended; do
        # The order of the two names alternates from one round to the next.
        order=(app_primary app_split)
        (( round % 2 )) || order=(app_split app_primary)
        for database in "${order[@]}"; do
            read -ra before <<<"$(commits)"
            ticks=$(cpu_ticks)
            out=$(PGPORT=$port PGDATABASE=$database pgbench -S -n -c "$clients" -j "$jobs" \
                -T "$seconds" -M "$protocol" 2>&1) ||
                { echo "$out" >&2; echo "routing.sh: pgbench failed" >&2; exit 1; }
            ticks=$(($(cpu_ticks) - ticks))
            [[ $database == app_split && $round == "$rounds" && $protocol == extended ]] &&
                admin -c "SHOW HOSTS" >"$work/show_hosts"
            flush_servers
            read -ra after <<<"$(commits)"
            tps=$(awk '/^tps/ { print $3 }' <<<"$out")
            transactions=$(awk '/^number of transactions actually/ { print $6 }' <<<"$out")
            echo "$round $database $protocol $tps $transactions $((after[0] - before[0])) \
$((after[1] - before[1])) $((after[2] - before[2])) $ticks" >>"$runs"
            printf 'round %s  %-12s %-9s %10.0f tps\n' "$round" "$database" "$protocol" "$tps" >&2
        done
    done
done

# What a node runs for three one-statement transactions of one client through pgmarina.
on_node 0 "ALTER SYSTEM SET log_statement = 'all'" >/dev/null
on_node 0 "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
log=$work/cluster/node0/postgres.log
mark=$(wc -l <"$log")
PGPORT=$port PGDATABASE=app_primary psql -X -q -c "SELECT 1" -c "SELECT 2" -c "SELECT 3" >/dev/null
sleep 0.5
tail -n +"$((mark + 1))" "$log" | grep -F "$SCRAM_USER@$DATABASE" | sed 's/^.*LOG:  //' \
    >"$work/statements"
on_node 0 "ALTER SYSTEM RESET log_statement" >/dev/null
on_node 0 "SELECT pg_reload_conf()" >/dev/null

mkdir -p "$(dirname "$result")"
{
    echo "# Read/write routing: select-only throughput"
    echo
    echo "Written by \`bench/routing.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), pgmarina" \
        "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)."
    echo
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    echo "**Machine: $(nproc) CPU cores ($cpu)" \
        "shared by everything in the run**: pgbench, pgmarina ($workers workers) and three" \
        "PostgreSQL 15 servers on one host. A replica adds no CPU here, so absolute numbers and" \
        "the split/primary_only ratio say how pgmarina routes and what that costs, not what" \
        "replicas on their own machines would add. Quote ratios, not tps. Load average" \
        "$load_before before the first run, $(cut -d' ' -f1-3 /proc/loadavg) after the last."
    echo
    echo "Setup: \`pg-cluster start --replicas 2\` (node0 primary, node1 and node2 streaming" \
        "replicas, fsync off), \`pgbench -i -s $scale\` on the primary, replayed by both replicas" \
        "before the first run. One pgmarina, transaction pooling, \`default_pool_size = $pool\`," \
        "\`workers = $workers\`, \`health_check_user = \"postgres\"\`; database \`app_primary\`" \
        "(\`routing = \"primary_only\"\`) and \`app_split\` (\`routing = \"read_write_split\"\`)," \
        "both on the database app of all three nodes. Each run: \`pgbench -S -n -c $clients" \
        "-j $jobs -T $seconds -M simple|extended\`; $rounds rounds, the order of the two" \
        "databases alternating. Ports: node0 $NODE0_PORT, node1 $NODE1_PORT, node2 $NODE2_PORT."
    echo
    echo "## Throughput (tps)"
    echo
    printf '| routing | protocol |'
    for round in $(seq "$rounds"); do printf ' round %s |' "$round"; done
    printf ' mean |\n|---|---|'
    for _ in $(seq "$rounds"); do printf -- '---:|'; done
    printf -- '---:|\n'
    for protocol in simple extended; do
        for database in app_primary app_split; do
            awk -v d="$database" -v p="$protocol" -v r="$rounds" '
                $2 == d && $3 == p { tps[$1] = $4; sum += $4 }
                END {
                    mode = d == "app_split" ? "read_write_split" : "primary_only"
                    printf "| %s | %s |", mode, p
                    for (i = 1; i <= r; i++) printf " %.0f |", tps[i]
                    printf " %.0f |\n", sum / r
                }' "$runs"
        done
    done
    echo
    echo "## Ratio read_write_split / primary_only"
    echo
    printf '| protocol |'
    for round in $(seq "$rounds"); do printf ' round %s |' "$round"; done
    printf ' of the means |\n|---|'
    for _ in $(seq "$rounds"); do printf -- '---:|'; done
    printf -- '---:|\n'
    for protocol in simple extended; do
        awk -v p="$protocol" -v r="$rounds" '
            $3 == p && $2 == "app_primary" { primary[$1] = $4; psum += $4 }
            $3 == p && $2 == "app_split" { on_split[$1] = $4; ssum += $4 }
            END {
                printf "| %s |", p
                for (i = 1; i <= r; i++) printf " %.2f |", on_split[i] / primary[i]
                printf " **%.2f** |\n", ssum / psum
            }' "$runs"
    done
    echo
    echo "## pgmarina's CPU time per transaction"
    echo
    echo "utime + stime of the pgmarina process during the pgbench runs, divided by the" \
        "transactions pgbench counted (all rounds). Less sensitive than tps to what else the" \
        "machine runs, though not immune (cache misses, migrations)."
    echo
    echo "| routing | protocol | µs per transaction |"
    echo "|---|---|---:|"
    for protocol in simple extended; do
        for database in app_primary app_split; do
            awk -v d="$database" -v p="$protocol" -v us="$tick_us" '
                $2 == d && $3 == p { ticks += $9; tx += $5 }
                END {
                    mode = d == "app_split" ? "read_write_split" : "primary_only"
                    printf "| %s | %s | %.1f |\n", mode, p, ticks * us / tx
                }' "$runs"
        done
    done
    echo
    echo "## Where the transactions ran"
    echo
    echo "Share of the runs' commits in database app on each node (pg_stat_database" \
        "xact_commit deltas over every round), next to the transactions pgbench counted."
    echo
    echo "| routing | protocol | node0 (primary) | node1 (replica) | node2 (replica) |" \
        "node commits | pgbench transactions |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for protocol in simple extended; do
        for database in app_primary app_split; do
            awk -v d="$database" -v p="$protocol" '
                $2 == d && $3 == p { n0 += $6; n1 += $7; n2 += $8; tx += $5 }
                END {
                    mode = d == "app_split" ? "read_write_split" : "primary_only"
                    all = n0 + n1 + n2
                    printf "| %s | %s | %.1f%% | %.1f%% | %.1f%% | %d | %d |\n", mode, p,
                        100 * n0 / all, 100 * n1 / all, 100 * n2 / all, all, tx
                }' "$runs"
        done
    done
    echo
    per_tx=$(awk '{ c += $6 + $7 + $8; t += $5 } END { printf "%.2f", c / t }' "$runs")
    echo "Node commits per pgbench transaction: $per_tx over all runs. A little over 1 comes" \
        "from clients still running when pgbench's clock stopped."
    echo "More than that are transactions pgmarina runs itself on the same server (see the" \
        "last section); they count in the shares above on the node that ran them."
    echo
    echo "## What node0 runs for one client's three transactions"
    echo
    echo "With \`log_statement = 'all'\` on node0, after the runs:" \
        "\`psql -c 'SELECT 1' -c 'SELECT 2' -c 'SELECT 3'\` through pgmarina's app_primary."
    echo
    echo '```'
    cat "$work/statements"
    echo '```'
    echo
    echo "## SHOW HOSTS at the end of the last read_write_split run"
    echo
    echo '```'
    cat "$work/show_hosts"
    echo '```'
} >"$result"
cat "$result"
