#!/usr/bin/env bash
# The README's first command: installs what is missing, builds pgmarina, starts a throwaway local
# PostgreSQL 15 (the embedded default: a fresh cluster in a temp dir, on a free loopback port) and
# runs pgmarina on 127.0.0.1:6432 in front of it. Ctrl-C stops pgmarina and removes the cluster.
# PGMARINA_PORT overrides 6432 when that port is taken.
set -euo pipefail
cd "$(dirname "$0")/.."

etc/setup-debian.sh
if [[ ! -f build/build.ninja ]]; then
    meson setup build >/dev/null
fi
meson compile -C build pgmarina >/dev/null

work=$(mktemp -d /tmp/pgmarina-quickstart.XXXXXX)
chmod 755 "$work"
trap 'tests/fixture/pg-cluster destroy "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
tests/fixture/pg-cluster start "$work/pg" --replicas 0 >/dev/null
# shellcheck source=/dev/null
source "$work/pg/cluster.env"

port=${PGMARINA_PORT:-6432}
cat >"$work/pgmarina.toml" <<TOML
[pgmarina]
listen = ["127.0.0.1:$port"]
unix_socket_dir = ""

[databases.app]
hosts = ["127.0.0.1:$PRIMARY_PORT"]

[users.$SCRAM_USER]
password = "$SCRAM_PASSWORD"
TOML

cat <<TEXT
PostgreSQL 15 (throwaway, data in $work/pg) listens on 127.0.0.1:$PRIMARY_PORT.
pgmarina listens on 127.0.0.1:$port with config $work/pgmarina.toml. Connect with:

    PGPASSWORD=$SCRAM_PASSWORD psql "host=127.0.0.1 port=$port dbname=app user=scram_user"

Ctrl-C stops pgmarina and removes the throwaway cluster.
TEXT
build/proxy/pgmarina -c "$work/pgmarina.toml"
