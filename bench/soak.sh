#!/usr/bin/env bash
# A soak: does pgmarina stay flat and come back to rest after minutes of mixed load, abuse and a
# failover? One pgmarina (read_write_split, health_check_user set) in front of a throwaway
# primary and one streaming replica (tests/fixture/pg-cluster). For MINUTES minutes:
#
#   - load: pgbench select-only (-S, extended protocol, routed to the replica) and tpcb-like
#     (writes, on the primary), each in a loop that starts a new pgbench whenever one ends
#     (pgbench 15 aborts a client on its first error, so a failover ends a run);
#   - abuse, one action every 1-4 s at random: kill -9 one of the running pgbench processes
#     (every client of it vanishes without a Terminate); a psql in the middle of pg_sleep
#     killed with SIGKILL; a psql whose pg_sleep is cancelled with SIGINT (a CancelRequest
#     through pgmarina); a raw TCP client that sends half a startup packet and vanishes; one
#     that answers the password request with half a Query and vanishes;
#   - at half time, a failover: the primary is stopped (--immediate) and the replica promoted;
#     the old primary is then rebuilt as the new primary's replica (pg-cluster follow);
#   - every SAMPLE seconds: pgmarina's VmRSS and open descriptors, and SHOW POOLS summed.
#
# Then the load stops and, after a short rest, SHOW POOLS must be back to zero (cl_active,
# cl_waiting, sv_active, sv_login), no client but the console's must be left in SHOW CLIENTS,
# pgmarina must be alive, and RSS and descriptors are compared: the first sample after warm-up,
# the last under load, the most seen, and the value at rest.
#
# Usage: bench/soak.sh [--minutes N] [BUILD_DIR] (default: 30 minutes, build), as root or as a
# user who can run PostgreSQL. Tunables in the environment: SAMPLE (5 seconds), SCALE (10),
# READERS (8 clients), WRITERS (4 clients), POOL (10). Needs pgbench, psql, python3 and
# PostgreSQL 15 (etc/setup-debian.sh). Writes bench/results/soak.md and prints it; exits 1 if a
# rest check fails.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
minutes=30 build=$root/build
while (($#)); do
    case $1 in
        --minutes) minutes=${2:?--minutes needs a number}; shift 2 ;;
        --minutes=*) minutes=${1#--minutes=}; shift ;;
        -*) echo "soak.sh: unknown option '$1'" >&2; exit 2 ;;
        *) build=$1; shift ;;
    esac
done
[[ $minutes =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "soak.sh: --minutes takes a number" >&2; exit 2; }
sample=${SAMPLE:-5} scale=${SCALE:-10} readers=${READERS:-8} writers=${WRITERS:-4}
pool=${POOL:-10}
duration=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
pgmarina=$build/proxy/pgmarina
pg_cluster=$root/tests/fixture/pg-cluster
result=$root/bench/results/soak.md
[[ -x $pgmarina ]] || { echo "soak.sh: no $pgmarina; build first" >&2; exit 1; }

work=$(mktemp -d -p "$([[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
chmod 755 "$work" # pg-cluster runs PostgreSQL as the OS user postgres when we are root
pgmarina_pid='' background=()
cleanup() {
    local pid
    for pid in "${background[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${background[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -n $pgmarina_pid ]] && kill "$pgmarina_pid" 2>/dev/null && wait "$pgmarina_pid" || true
    "$pg_cluster" destroy "$work/cluster" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

"$pg_cluster" start "$work/cluster" --replicas 1 >/dev/null
# shellcheck disable=SC1091
source "$work/cluster/cluster.env"
node_ports=("$NODE0_PORT" "$NODE1_PORT")
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/pgmarina.toml" <<TOML
[pgmarina]
listen = ["127.0.0.1:$port"]
unix_socket_dir = ""
workers = 2
pool_mode = "transaction"
default_pool_size = $pool
max_client_conn = 1000
log_connections = false
log_disconnections = false
admin_users = ["$SUPERUSER"]
health_check_user = "$SUPERUSER"
health_check_password = "$SUPERUSER_PASSWORD"
health_check_interval = "200ms"
server_login_retry = 2
query_wait_timeout = 30
client_login_timeout = 5
[metrics]
listen = ""
[databases.$DATABASE]
hosts = ["127.0.0.1:$NODE0_PORT", "127.0.0.1:$NODE1_PORT"]
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
on_node() { PGPORT=${node_ports[$1]} PGUSER=$SUPERUSER PGPASSWORD=$SUPERUSER_PASSWORD \
    psql -X -At -d postgres -c "$2"; }
admin() { PGPORT=$port PGUSER=$SUPERUSER PGPASSWORD=$SUPERUSER_PASSWORD \
    psql -X -At -F'|' -d pgbouncer -c "$1"; }

PGPORT=$NODE0_PORT pgbench -i -q -s "$scale" >/dev/null 2>&1
target=$(on_node 0 "SELECT pg_current_wal_lsn()")
for _ in $(seq 300); do
    [[ $(on_node 1 "SELECT pg_last_wal_replay_lsn() >= '$target'") == t ]] && break
    sleep 0.1
done
for _ in $(seq 100); do
    [[ $(admin "SHOW HOSTS" | awk -F'|' '$5 == "up" { n++ } END { print n + 0 }') == 2 ]] && break
    sleep 0.1
done

started=$EPOCHSECONDS
deadline=$((started + duration))
: >"$work/events"
event() { echo "$((EPOCHSECONDS - started)) $*" >>"$work/events"; }

# Starts a new pgbench whenever the last one ends, until the deadline. Each run's summary line
# and errors go to FILE; the running pgbench's pid to WORK/NAME.pid, for the abuse to kill.
pgbench_loop() { # NAME FILE PGBENCH_ARGS...
    local name=$1 file=$2 child='' status
    shift 2
    trap '[[ -n $child ]] && kill "$child" 2>/dev/null; exit 0' TERM
    while ((EPOCHSECONDS < deadline)); do
        local left=$((deadline - EPOCHSECONDS))
        ((left > 30)) && left=30
        ((left < 1)) && break
        PGPORT=$port pgbench -n -T "$left" "$@" >"$work/$name.out" 2>&1 &
        child=$!
        echo "$child" >"$work/$name.pid"
        wait "$child" && status=0 || status=$?
        child=''
        {
            echo "run status=$status $(grep -E '^(tps|number of failed|number of transactions actually)' \
                "$work/$name.out" | tr '\n' ' ' || true)"
            grep -E 'ERROR|FATAL|error|aborted' "$work/$name.out" | head -5 || true
        } >>"$file"
    done
}
pgbench_loop readers "$work/readers.log" -S -M extended -c "$readers" -j 1 &
background+=($!)
pgbench_loop writers "$work/writers.log" -c "$writers" -j 1 &
background+=($!)

# Half a startup packet, then gone; or a whole one, then, where the password should come, the
# start of a Query, and gone.
raw_client() { # half_startup | mid_query
    python3 - "$port" "$1" "$SCRAM_USER" "$DATABASE" <<'PY' || true
import socket, struct, sys
port, kind, user, db = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
startup = struct.pack("!I", len(body) + 4) + body
if kind == "half_startup":
    s.sendall(startup[:6])
else:
    s.sendall(startup)
    s.recv(1024)  # the authentication request
    s.sendall(b"Q" + struct.pack("!I", 100) + b"SELECT")  # not a password, and cut short
s.close()
PY
}

# The abuse: one random action every 1-4 s until the deadline.
chaos() {
    trap 'exit 0' TERM
    local kind victim
    while ((EPOCHSECONDS < deadline)); do
        sleep "$((RANDOM % 4 + 1))"
        kind=$((RANDOM % 5))
        case $kind in
            0)
                victim=$(cat "$work/readers.pid" "$work/writers.pid" 2>/dev/null | shuf -n 1 || true)
                if [[ -n $victim ]] && kill -9 "$victim" 2>/dev/null; then event kill_pgbench; fi
                ;;
            1)
                PGPORT=$port psql -X -q -c "SELECT pg_sleep(5)" >/dev/null 2>&1 &
                local psql_pid=$!
                sleep 0.5
                kill -9 "$psql_pid" 2>/dev/null || true
                wait "$psql_pid" 2>/dev/null || true
                event kill_psql_mid_query
                ;;
            2)
                # SIGINT makes psql send a CancelRequest; the query ends with 57014.
                if PGPORT=$port timeout -s INT 1 psql -X -q -c "SELECT pg_sleep(5)" \
                    >>"$work/cancel.out" 2>&1; then
                    event cancel_not_needed
                else
                    event cancel
                fi
                ;;
            3) raw_client half_startup; event raw_half_startup ;;
            4) raw_client mid_query; event raw_query_for_password ;;
        esac
    done
}
chaos &
background+=($!)

# The failover at half time, as its own background job so the sampler keeps going.
failover() {
    sleep "$((duration / 2))"
    event failover_stop_primary
    "$pg_cluster" stop "$work/cluster" node0 --immediate >/dev/null
    "$pg_cluster" promote "$work/cluster" node1 >/dev/null
    event failover_promoted_node1
    "$pg_cluster" follow "$work/cluster" node0 node1 >/dev/null
    event failover_node0_follows
}
failover &
background+=($!)

# Samples: seconds rss_kb fds cl_active cl_waiting sv_active sv_idle sv_used sv_login
samples=$work/samples
pools() {
    admin "SHOW POOLS" | awk -F'|' '$1 != "pgbouncer" {
        a += $3; w += $4; sa += $7; si += $10; su += $11; sl += $13 }
        END { print a + 0, w + 0, sa + 0, si + 0, su + 0, sl + 0 }'
}
take_sample() {
    local rss fds
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pgmarina_pid/status")
    fds=$(find "/proc/$pgmarina_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
    echo "$((EPOCHSECONDS - started)) $rss $fds $(pools 2>/dev/null || echo '? ? ? ? ? ?')"
}
while ((EPOCHSECONDS < deadline)); do
    take_sample >>"$samples"
    sleep "$sample"
done

# The end: stop everything that makes load, then let pgmarina come to rest.
for pid in "${background[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${background[@]}"; do wait "$pid" 2>/dev/null || true; done
background=()
alive=yes
kill -0 "$pgmarina_pid" 2>/dev/null || alive=no
rest=-
for _ in $(seq 100); do
    rest=$(pools)
    read -r a w sa _ _ sl <<<"$rest"
    [[ "$a $w $sa $sl" == "0 0 0 0" ]] && break
    sleep 0.2
done
sleep 2
rest_sample=$(take_sample)
read -r _ _ _ a w sa si su sl <<<"$rest_sample"
clients_left=$(admin "SHOW CLIENTS" | awk -F'|' '$3 != "pgbouncer"' | wc -l)
# And it still serves.
after=$(PGPORT=$port psql -X -At -c "SELECT 1" 2>&1 || true)
rest_ok=yes
[[ $alive == yes && "$a $w $sa $sl" == "0 0 0 0" && $clients_left == 0 && $after == 1 ]] ||
    rest_ok=no

# Warm-up: samples from the first tenth of the run are left out of "first".
warm=$((duration / 10))
column_stats() { # COL -> first_after_warmup last max
    awk -v c="$1" -v w="$warm" '$1 >= w && first == "" { first = $c }
        { last = $c; if ($c > max) max = $c } END { print first, last, max }' "$samples"
}
read -r rss_first rss_last rss_max < <(column_stats 2)
read -r fd_first fd_last fd_max < <(column_stats 3)
rss_rest=$(awk '{ print $2 }' <<<"$rest_sample")
fd_rest=$(awk '{ print $3 }' <<<"$rest_sample")

count_runs() { grep -c '^run ' "$1" || true; }
transactions() { # the sum of "number of transactions actually processed: N" over FILE's runs
    grep -o 'actually processed: [0-9]*' "$1" | awk '{ n += $3 } END { print n + 0 }'
}
mkdir -p "$(dirname "$result")"
{
    if awk -v m="$minutes" 'BEGIN { exit !(m < 30) }'; then
        echo "# Soak — SHORT RUN ($minutes minutes; the soak proper is 30)"
    else
        echo "# Soak ($minutes minutes)"
    fi
    echo
    echo "Written by \`bench/soak.sh --minutes $minutes\` on $(date -u '+%Y-%m-%d %H:%M UTC')," \
        "pgmarina $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)."
    echo
    echo "**Machine: $(nproc) CPU cores shared by everything in the run** (pgbench, psql," \
        "pgmarina, two PostgreSQL 15 servers, pg_basebackup for the failover; load average" \
        "$(cut -d' ' -f1-3 /proc/loadavg) at the end)."
    echo
    echo "Setup: \`pg-cluster start --replicas 1\`, \`pgbench -i -s $scale\`; one pgmarina," \
        "transaction pooling, \`workers = 2\`, \`default_pool_size = $pool\`," \
        "\`routing = \"read_write_split\"\`, \`health_check_user = \"postgres\"\` every 200 ms," \
        "\`server_login_retry = 2\`. Load: \`pgbench -S -M extended -c $readers\` and" \
        "\`pgbench -c $writers\` (tpcb-like), each restarted whenever it ends. Abuse every" \
        "1-4 s (see the script's header). A failover at half time."
    echo
    echo "## At rest, after the load stopped"
    echo
    echo "| check | value | expected |"
    echo "|---|---:|---:|"
    echo "| pgmarina alive | $alive | yes |"
    echo "| SHOW POOLS cl_active | $a | 0 |"
    echo "| SHOW POOLS cl_waiting | $w | 0 |"
    echo "| SHOW POOLS sv_active | $sa | 0 |"
    echo "| SHOW POOLS sv_login | $sl | 0 |"
    echo "| SHOW POOLS sv_idle + sv_used | $((si + su)) | ≤ $((pool * 2)) |"
    echo "| clients left (SHOW CLIENTS, console aside) | $clients_left | 0 |"
    echo "| a new client's SELECT 1 | $after | 1 |"
    echo
    echo "**Rest checks: $( [[ $rest_ok == yes ]] && echo passed || echo FAILED ).**"
    echo
    echo "## Memory and descriptors"
    echo
    echo "Sampled every $sample s; \"first\" is the first sample after $warm s of warm-up."
    echo
    echo "| | first | last under load | max | at rest |"
    echo "|---|---:|---:|---:|---:|"
    echo "| VmRSS (kB) | $rss_first | $rss_last | $rss_max | $rss_rest |"
    echo "| open descriptors | $fd_first | $fd_last | $fd_max | $fd_rest |"
    echo
    echo "## What happened"
    echo
    echo "pgbench runs: $(count_runs "$work/readers.log") select-only," \
        "$(count_runs "$work/writers.log") tpcb-like (a run ends at its -T or when a client" \
        "errors out: pgbench 15 aborts a client on its first error), with" \
        "$(transactions "$work/readers.log") and $(transactions "$work/writers.log")" \
        "transactions processed (runs killed by the abuse print no count and add nothing)."
    echo
    echo "| abuse or event | count |"
    echo "|---|---:|"
    awk '{ n[$2]++ } END { for (k in n) printf "| %s | %d |\n", k, n[k] }' "$work/events" | sort
    echo
    echo "Failover timeline (seconds since the start):"
    echo
    echo '```'
    grep failover "$work/events" || echo "(none: the run was too short)"
    echo '```'
    echo
    echo "Errors pgbench reported, counted (digits replaced by N):"
    echo
    echo '```'
    cat "$work/readers.log" "$work/writers.log" | grep -v '^run ' | sed -E 's/[0-9]+/N/g' |
        sort | uniq -c | sort -rn | head -20
    echo '```'
    echo
    echo "## Samples"
    echo
    echo "| s | VmRSS kB | fds | cl_active | cl_waiting | sv_active | sv_idle | sv_used | sv_login |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk '{ printf "| %s |\n", $1 " | " $2 " | " $3 " | " $4 " | " $5 " | " $6 " | " $7 " | " $8 " | " $9 }' \
        "$samples"
    echo "| rest | $(awk '{ print $2 " | " $3 " | " $4 " | " $5 " | " $6 " | " $7 " | " $8 " | " $9 }' <<<"$rest_sample") |"
    echo
    echo "## pgmarina's log, warnings and errors counted (digits replaced by N)"
    echo
    echo '```'
    grep -E 'WARN|ERROR|FATAL|warning|error' "$work/pgmarina.log" | sed -E 's/^[^]]*\] //; s/[0-9]+/N/g' |
        sort | uniq -c | sort -rn | head -25 || true
    echo '```'
} >"$result"
cat "$result"
[[ $rest_ok == yes ]]
