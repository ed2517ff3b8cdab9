#!/usr/bin/env bash
# Installs what building, testing and running pgmarina needs on Debian 12, and nothing more.
# Idempotent: packages already present are not fetched again, so a developer's second run is fast.
# Usage: etc/setup-debian.sh [--with-fuzz] [--with-bench]
set -euo pipefail

packages=(
    g++ meson ninja-build pkg-config python3
    # tests/unit/etc_manifests_test.py parses the Kubernetes manifests and alert rules.
    python3-yaml
    libboost1.81-dev libssl-dev libpq-dev libtomlplusplus-dev prometheus-cpp-dev doctest-dev
    postgresql-15 postgresql-contrib postgresql-client-15
    # Drivers the prepared statement tests run (tests/drivers); node-postgres comes from npm below.
    python3-psycopg python3-asyncpg libpostgresql-jdbc-java default-jdk-headless
    # /metrics is checked with promtool (Debian's prometheus) and Debian's pgbouncer exporter.
    prometheus prometheus-pgbouncer-exporter
    # A real Patroni cluster for the failover test (tests/fixture/patroni-cluster). Its etcd3
    # client needs python3-etcd, which patroni's dependencies may leave out for another DCS's.
    patroni python3-etcd etcd-server
)
# node-postgres from the npm registry: Debian's node-pg refuses to install next to a Node.js
# from elsewhere (NodeSource), which our CI machines have; Debian's nodejs and npm otherwise.
node_modules_prefix=/usr/local/lib/pgmarina-node
command -v npm >/dev/null || packages+=(nodejs npm)
for arg in "$@"; do
    case "$arg" in
        --with-fuzz) packages+=(clang libclang-rt-14-dev) ;;
        --with-bench) packages+=(pgbouncer gnuplot-nox valgrind strace) ;;
        *) echo "setup-debian.sh: unknown option '$arg'" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

sudo=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || { echo "setup-debian.sh: run as root or install sudo" >&2; exit 1; }
    sudo=(sudo)
fi
if ((${#missing[@]} > 0)); then
    echo "setup-debian.sh: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    # Debian's postgresql-15 may create a cluster on 5432; nothing here uses it: tests and the
    # quick start run their own throwaway servers on free loopback ports.
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# etcd-server and patroni enable their system services. Tests start their own etcd and Patroni
# on free loopback ports and never use these, so a service that this run installed is stopped
# and disabled again; one that was there before is left alone.
declare -A service_of=([etcd-server]=etcd [patroni]=patroni)
for package in "${!service_of[@]}"; do
    [[ " ${missing[*]} " == *" $package "* ]] || continue
    service=${service_of[$package]}
    if [[ -d /run/systemd/system ]]; then
        "${sudo[@]}" systemctl disable --now --quiet "$service.service"
    elif [[ -x /etc/init.d/$service ]]; then
        # Where a policy-rc.d kept the package from starting it (containers), stopping is
        # refused too, and there is nothing to stop.
        "${sudo[@]}" update-rc.d "$service" disable >/dev/null
        "${sudo[@]}" invoke-rc.d "$service" stop >/dev/null 2>&1 || true
    fi
done

if [[ ! -d $node_modules_prefix/node_modules/pg ]]; then
    echo "setup-debian.sh: installing node-postgres (pg) from npm into $node_modules_prefix"
    "${sudo[@]}" npm install --silent --no-audit --no-fund --prefix "$node_modules_prefix" pg@8 \
        >/dev/null
fi
