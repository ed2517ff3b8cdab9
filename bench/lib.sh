# shellcheck shell=bash disable=SC2034,SC2154
# Shared by bench/compare.sh and bench/idle_clients.sh (sourced, not run): a throwaway
# PostgreSQL 15 (tests/fixture/pg-cluster), pgmarina and Debian's pgbouncer set up alike in front
# of it. Every proxy: transaction pooling, pool size $POOL, clients authenticated per user as
# PostgreSQL does (md5_user with md5, everyone else with SCRAM-SHA-256) from plain passwords.
#
# The caller sets `root` (the repository), sources this file and calls bench_prepare first.

bench_pool=${POOL:-20}
bench_pids=()
# A command the proxies run under (bench/instructions.sh: valgrind), and how long their port may
# take to open.
bench_wrap=()
bench_wait_seconds=10

# The fds a proxy or pgbench with 5000+ clients needs; the hard limit may be lower in containers.
ulimit -n "$(ulimit -Hn)"

# What every script here does first: the Debian packages (unless SETUP=0); a release pgmarina in
# `pgmarina` (PGMARINA_BIN, or built in BUILD_DIR, default build-release); a scratch directory
# `work` that the OS user postgres can enter, on tmpfs when there is one (pg-cluster starts
# several times faster there), removed at exit with everything started in it.
bench_prepare() {
    if [[ ${SETUP:-1} != 0 ]]; then
        "$root/etc/setup-debian.sh" --with-bench
    fi
    if [[ -n ${PGMARINA_BIN:-} ]]; then
        pgmarina=$PGMARINA_BIN
    else
        local build=${BUILD_DIR:-$root/build-release}
        [[ -d $build ]] || meson setup "$build" -Dbuildtype=release -Dintegration=disabled >/dev/null
        nice -n 10 meson compile -C "$build" proxy/pgmarina >/dev/null
        pgmarina=$build/proxy/pgmarina
    fi
    [[ -x $pgmarina ]] || { echo "$(basename "$0"): no $pgmarina; build first" >&2; exit 1; }
    work=$(mktemp -d -p "$([[ -d /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")
    chmod 755 "$work"
    trap 'bench_cleanup; rm -rf "$work"' EXIT
}

bench_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

bench_wait_port() { # PORT: until something accepts on 127.0.0.1:PORT (bench_wait_seconds)
    for _ in $(seq $((bench_wait_seconds * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bench: nothing listens on port $1" >&2
    return 1
}

# Starts the cluster in $work/cluster (no replicas) and sources its cluster.env.
bench_start_cluster() {
    "$root/tests/fixture/pg-cluster" start "$work/cluster" --replicas 0 >/dev/null
    # shellcheck disable=SC1091
    source "$work/cluster/cluster.env"
    # The same rules in front of PostgreSQL (the fixture's pg_hba) and of both proxies.
    cat >"$work/hba.conf" <<EOF
host all $MD5_USER 127.0.0.1/32 md5
host all all 127.0.0.1/32 scram-sha-256
EOF
    printf '"%s" "%s"\n' "$SCRAM_USER" "$SCRAM_PASSWORD" "$MD5_USER" "$MD5_PASSWORD" \
        >"$work/userlist.txt"
}

# pgbench's tables (scale 1) in the cluster, readable by md5_user: what instructions.sh and
# syscalls.sh run `pgbench -S` on with md5 logins (a SCRAM login's PBKDF2 would drown the counts).
bench_init_select_only() {
    PGPASSWORD=$SCRAM_PASSWORD pgbench -i -q -s 1 -h 127.0.0.1 -p "$PRIMARY_PORT" -U "$SCRAM_USER" \
        "$DATABASE" >/dev/null 2>&1
    PGPASSWORD=$SCRAM_PASSWORD psql -X -q -h 127.0.0.1 -p "$PRIMARY_PORT" -U "$SCRAM_USER" "$DATABASE" \
        -c "GRANT SELECT ON pgbench_accounts, pgbench_branches TO $MD5_USER"
}

bench_cleanup() {
    local pid
    for pid in "${bench_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${bench_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    [[ -d $work/cluster ]] && "$root/tests/fixture/pg-cluster" destroy "$work/cluster" >/dev/null 2>&1
    return 0
}

# bench_start_pgmarina NAME WORKERS BINARY: sets bench_started_pid and bench_started_port.
bench_start_pgmarina() {
    local name=$1 workers=$2 binary=$3 port
    port=$(bench_free_port)
    cat >"$work/$name.toml" <<TOML
[pgmarina]
listen = ["127.0.0.1:$port"]
unix_socket_dir = ""
workers = $workers
pool_mode = "transaction"
default_pool_size = $bench_pool
max_client_conn = 15000
auth_type = "hba"
auth_hba_file = "$work/hba.conf"
auth_file = "$work/userlist.txt"
log_connections = false
log_disconnections = false
[metrics]
listen = ""
[databases.$DATABASE]
hosts = ["127.0.0.1:$PRIMARY_PORT"]
TOML
    "${bench_wrap[@]}" "$binary" -c "$work/$name.toml" >"$work/$name.log" 2>&1 &
    local pid=$!
    bench_pids+=("$pid")
    bench_wait_port "$port" || { cat "$work/$name.log" >&2; return 1; }
    bench_started_pid=$pid bench_started_port=$port
}

# bench_start_pgbouncer NAME: sets bench_started_pid and bench_started_port. pgbouncer refuses to run as root, so it runs
# as the OS user postgres (setpriv: no PAM session, so it keeps our fd limit).
bench_start_pgbouncer() {
    local name=$1 port
    port=$(bench_free_port)
    cat >"$work/$name.ini" <<INI
[databases]
$DATABASE = host=127.0.0.1 port=$PRIMARY_PORT dbname=$DATABASE
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
pool_mode = transaction
default_pool_size = $bench_pool
max_client_conn = 15000
auth_type = hba
auth_hba_file = $work/hba.conf
auth_file = $work/userlist.txt
logfile = $work/$name.log
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
INI
    chmod 644 "$work/$name.ini" "$work/hba.conf" "$work/userlist.txt"
    touch "$work/$name.log" && chown postgres: "$work/$name.log"
    if ((EUID == 0)); then
        setpriv --reuid=postgres --regid=postgres --init-groups "${bench_wrap[@]}" pgbouncer \
            "$work/$name.ini" >>"$work/$name.log" 2>&1 &
    else
        "${bench_wrap[@]}" pgbouncer "$work/$name.ini" >>"$work/$name.log" 2>&1 &
    fi
    local pid=$!
    bench_pids+=("$pid")
    bench_wait_port "$port" || { cat "$work/$name.log" >&2; return 1; }
    bench_started_pid=$pid bench_started_port=$port
}

# CPU time PID has used so far, in clock ticks (utime + stime of /proc/PID/stat).
bench_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Resident memory of PID in kB (VmRSS of /proc/PID/status).
bench_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
bench_tick_us=$((1000000 / $(getconf CLK_TCK)))

bench_machine_note() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    echo "$(nproc) CPU cores ($cpu), $(awk '/^MemTotal/ { printf "%.0f GB", $2 / 1048576 }' \
        /proc/meminfo) RAM, $(uname -sr)"
}
