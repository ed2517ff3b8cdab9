#!/usr/bin/env bash
# pgmarina next to PgBouncer (issue 9): one command that installs what is missing, builds
# pgmarina (release), starts a throwaway PostgreSQL 15, pgmarina with 1 and with 2 workers and
# Debian's pgbouncer in front of it, and runs pgbench through each of them and straight to
# PostgreSQL, interleaved: for every (workload, clients) cell the targets run one after the other,
# their order rotating from cell to cell, so that all of them see the same noisy machine.
#
#   workloads  simple, extended, prepared   pgbench -S -M simple|extended|prepared
#              tpcb                         pgbench's default script (TPC-B like), -M simple
#              connect-scram, connect-md5   pgbench -S -C: a new connection per transaction, as
#                                           scram_user (SCRAM-SHA-256) or md5_user (md5)
#   clients    1 10 50 200 1000 5000 (direct PostgreSQL only up to its max_connections)
#   targets    direct pgbouncer pgmarina-w1 pgmarina-w2
#
# Each run records tps, average and p99 latency (from pgbench's per-transaction log, -l), failed
# transactions (pgbench's failed count plus the transactions of clients that aborted, e.g. on a
# refused connection) and the proxy's CPU time (utime + stime of /proc/PID/stat) per transaction.
# Runs have a fixed number of transactions (-t, per client: TX / clients rounded up).
# Then bench/idle_clients.sh measures memory per idle client (skip it with IDLE=0).
#
# Writes bench/results/compare.csv, bench/results/compare.md and bench/results/compare.png
# (gnuplot), and prints a summary table. As root (apt-get; PostgreSQL and pgbouncer then run as
# the OS user postgres). The full run took 25 minutes (and 1 more for idle_clients.sh) on the
# shared 2-core box at load average 20; bench/results/compare.md is its output.
#
# Subsets and knobs (environment):
#   WORKLOADS=simple,extended CLIENTS=50 TARGETS=pgbouncer,pgmarina-w2 SECONDS_EACH=5 \
#       bash bench/compare.sh
#   WORKLOADS, CLIENTS, TARGETS  comma-separated subsets of the lists above
#   SECONDS_EACH                 run -T SECONDS_EACH instead of a fixed number of transactions
#   TX_SELECT (default 5000), TX_TPCB (1000), TX_CONNECT (300)  transactions per run (at least
#                                one per client: 5000 at 5000 clients)
#   POOL (20), SCALE (10), JOBS (4, pgbench threads, at most the clients), IDLE (1 for a full
#   run, 0 for a subset: run bench/idle_clients.sh), IDLE_CLIENTS (10000)
#   SETUP=0 skips etc/setup-debian.sh; BUILD_DIR (build-release) is configured when absent;
#   PGMARINA_BIN=path runs that binary instead of building one.
#   OUT (bench/results) where the results go; a subset run writes compare-subset.* unless OUT
#   or NAME is given.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
all_workloads=simple,extended,prepared,tpcb,connect-scram,connect-md5
all_clients=1,10,50,200,1000,5000
all_targets=direct,pgbouncer,pgmarina-w1,pgmarina-w2
IFS=, read -ra workloads <<<"${WORKLOADS:-$all_workloads}"
IFS=, read -ra client_counts <<<"${CLIENTS:-$all_clients}"
IFS=, read -ra targets <<<"${TARGETS:-$all_targets}"
seconds=${SECONDS_EACH:-}
tx_select=${TX_SELECT:-5000} tx_tpcb=${TX_TPCB:-1000} tx_connect=${TX_CONNECT:-300}
scale=${SCALE:-10} jobs=${JOBS:-4}
out=${OUT:-$root/bench/results}
if [[ -z ${NAME:-} ]]; then
    NAME=compare
    [[ -n ${WORKLOADS:-}${CLIENTS:-}${TARGETS:-}${SECONDS_EACH:-} && -z ${OUT:-} ]] &&
        NAME=compare-subset
fi
# A subset run is for re-measuring a cell quickly: no 10 000 idle clients unless asked.
idle=${IDLE:-$([[ $NAME == compare ]] && echo 1 || echo 0)}

for w in "${workloads[@]}"; do
    [[ ,$all_workloads, == *",$w,"* ]] || { echo "compare.sh: unknown workload $w" >&2; exit 2; }
done
for t in "${targets[@]}"; do
    [[ ,$all_targets, == *",$t,"* ]] || { echo "compare.sh: unknown target $t" >&2; exit 2; }
done

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"
bench_prepare

bench_start_cluster
max_connections=$("$root/tests/fixture/pg-cluster" psql "$work/cluster" node0 -At \
    -c "SHOW max_connections")
declare -A pid_of port_of
port_of[direct]=$PRIMARY_PORT
for t in "${targets[@]}"; do
    case $t in
        direct) continue ;;
        pgbouncer) bench_start_pgbouncer pgbouncer ;;
        pgmarina-w1) bench_start_pgmarina "$t" 1 "$pgmarina" ;;
        pgmarina-w2) bench_start_pgmarina "$t" 2 "$pgmarina" ;;
    esac
    pid_of[$t]=$bench_started_pid port_of[$t]=$bench_started_port
done

export PGHOST=127.0.0.1 PGDATABASE=$DATABASE
PGPORT=$PRIMARY_PORT PGUSER=$SCRAM_USER PGPASSWORD=$SCRAM_PASSWORD \
    pgbench -i -q -s "$scale" >/dev/null 2>&1
# md5_user runs the connect-md5 workload on scram_user's tables.
PGPORT=$PRIMARY_PORT PGUSER=$SCRAM_USER PGPASSWORD=$SCRAM_PASSWORD psql -X -q \
    -c "GRANT SELECT, UPDATE, INSERT ON pgbench_accounts, pgbench_branches, pgbench_tellers,
        pgbench_history TO $MD5_USER"

# The direct target's cells that PostgreSQL cannot take: its max_connections, less the servers
# the proxies' pools may hold (two users each) and a few for superuser and the fixture.
proxies=$((${#targets[@]} - 1))
[[ ,${TARGETS:-$all_targets}, == *,direct,* ]] || proxies=${#targets[@]}
direct_max=$((max_connections - proxies * 2 * bench_pool - 10))

csv=$work/runs.csv
echo "workload,clients,target,status,transactions,expected,tps,latency_avg_ms,latency_p99_ms,failed,cpu_us_per_tx,seconds" \
    >"$csv"

# run_cell WORKLOAD CLIENTS TARGET: one pgbench run; appends a row to $csv.
run_cell() {
    local workload=$1 clients=$2 target=$3
    if [[ $target == direct ]] && ((clients > direct_max)); then
        echo "$workload,$clients,$target,skipped: max_connections $max_connections,,,,,,,," >>"$csv"
        return
    fi
    local user=$SCRAM_USER password=$SCRAM_PASSWORD args=(-n) tx
    case $workload in
        simple | extended | prepared) args+=(-S -M "$workload"); tx=$tx_select ;;
        tpcb) args+=(-M simple); tx=$tx_tpcb ;;
        connect-scram) args+=(-S -C -M simple); tx=$tx_connect ;;
        connect-md5) args+=(-S -C -M simple); tx=$tx_connect; user=$MD5_USER
            password=$MD5_PASSWORD ;;
    esac
    local per_client=$(((tx + clients - 1) / clients)) expected
    if [[ -n $seconds ]]; then
        args+=(-T "$seconds"); expected=
    else
        args+=(-t "$per_client"); expected=$((per_client * clients))
    fi
    local j=$((clients < jobs ? clients : jobs))
    local dir=$work/run && rm -rf "$dir" && mkdir "$dir"
    local pid=${pid_of[$target]:-} ticks=0 started ended status=ok
    [[ -n $pid ]] && ticks=$(bench_cpu_ticks "$pid")
    started=$(date +%s.%N)
    # A stuck run (a proxy that stopped answering) must not hang the whole matrix.
    (cd "$dir" && PGPORT=${port_of[$target]} PGUSER=$user PGPASSWORD=$password \
        timeout 600 pgbench "${args[@]}" -c "$clients" -j "$j" -l --log-prefix=tx \
        >"$dir/out" 2>&1) || status="pgbench exit $?"
    ended=$(date +%s.%N)
    [[ -n $pid ]] && ticks=$(($(bench_cpu_ticks "$pid") - ticks))
    local processed failed tps
    processed=$(awk '/^number of transactions actually processed/ { split($6, a, "/"); print a[1] }' "$dir/out")
    failed=$(awk '/^number of failed transactions/ { print $5 }' "$dir/out")
    tps=$(awk '/^tps = / { print $3 }' "$dir/out")
    processed=${processed:-0} failed=${failed:-0}
    # pgbench counts neither failed transactions nor those of aborted clients as processed.
    [[ -n $expected ]] && failed=$((expected - processed))
    if [[ $status != ok ]]; then
        grep -m 3 -E 'error|FATAL|abort' "$dir/out" | sed "s/^/  $target: /" >&2 || true
        cp "$dir/out" "$work/failed-$workload-$clients-$target.out"
    fi
    # Latency per transaction in µs is the 3rd field of each log line; failed ones have a word.
    local lat
    lat=$({ cat "$dir"/tx.* 2>/dev/null || true; } | awk '$3 ~ /^[0-9]+$/ { print $3 }' | sort -n |
        awk '{ v[NR] = $1; s += $1 } END {
            if (NR == 0) { print ","; exit }
            i = int(NR * 0.99 + 0.999999); if (i > NR) i = NR; if (i < 1) i = 1
            printf "%.3f,%.3f", s / NR / 1000, v[i] / 1000 }')
    local cpu=
    if [[ -n $pid ]] && ((processed > 0)); then
        cpu=$(awk -v t="$ticks" -v us="$bench_tick_us" -v n="$processed" \
            'BEGIN { printf "%.1f", t * us / n }')
    fi
    echo "$workload,$clients,$target,$status,$processed,$expected,${tps:-},$lat,$failed,$cpu,$(
        awk -v a="$started" -v b="$ended" 'BEGIN { printf "%.1f", b - a }')" >>"$csv"
    printf '%-13s %5s  %-12s %10s tps  avg %8s ms  p99 %8s ms  failed %5s  cpu %6s us/tx  %s\n' \
        "$workload" "$clients" "$target" "${tps%.*}" "${lat%,*}" "${lat#*,}" "$failed" \
        "${cpu:--}" "$([[ $status == ok ]] || echo "$status")" >&2
}

date_started=$(date -u '+%Y-%m-%d %H:%M UTC')
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cell=0
for workload in "${workloads[@]}"; do
    for clients in "${client_counts[@]}"; do
        n=${#targets[@]}
        for ((i = 0; i < n; i++)); do
            run_cell "$workload" "$clients" "${targets[(i + cell) % n]}"
        done
        cell=$((cell + 1))
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# What PostgreSQL runs for a proxy's transactions: with log_statement = 'all', pgbench -S
# -M extended, 2 clients, 3 transactions each, through every proxy target.
statements=$work/statements
cluster_psql() { "$root/tests/fixture/pg-cluster" psql "$work/cluster" node0 -q "$@" >/dev/null; }
cluster_psql -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()"
sleep 0.5
for t in "${targets[@]}"; do
    [[ $t == direct ]] && continue
    log=$work/cluster/node0/postgres.log
    mark=$(wc -l <"$log")
    PGPORT=${port_of[$t]} PGUSER=$SCRAM_USER PGPASSWORD=$SCRAM_PASSWORD \
        pgbench -n -S -M extended -c 2 -t 3 >/dev/null 2>&1 || true
    sleep 0.5
    { echo "== $t"; tail -n +"$((mark + 1))" "$log" | grep -F "$SCRAM_USER@$DATABASE" |
        grep -E 'LOG:  (statement|execute)' | sed 's/^.* UTC //; s/LOG:  //' |
        grep -v 'pg_catalog\|pgbench_branches'; } >>"$statements"
done
cluster_psql -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()"
bench_cleanup
bench_pids=()

mkdir -p "$out"
cp "$csv" "$out/$NAME.csv"
[[ -f $statements ]] && cp "$statements" "$out/$NAME-statements.txt"
idle_md=
if [[ $idle != 0 ]]; then
    OUT=$out PGMARINA_BIN=$pgmarina SETUP=0 bash "$root/bench/idle_clients.sh" && idle_md=$out/idle_clients.md
fi
python3 "$root/bench/compare_report.py" --csv "$out/$NAME.csv" --md "$out/$NAME.md" \
    --png "$out/$NAME.png" --idle "${idle_md:-}" --date "$date_started" \
    --statements "$([[ -f $statements ]] && echo "$out/$NAME-statements.txt")" \
    --commit "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)" \
    --machine "$(bench_machine_note)" --load "$load_before before the first run, $load_after after the last" \
    --settings "pool size $bench_pool, pgbench -s $scale, -j min(clients, $jobs), $(
        if [[ -n $seconds ]]; then echo "-T $seconds"; else
            echo "-t ceil(TX / clients) with TX $tx_select (select-only), $tx_tpcb (tpcb), $tx_connect (connect)"; fi
    ), PostgreSQL max_connections $max_connections (direct runs up to $direct_max clients)"
