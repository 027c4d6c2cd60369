#!/usr/bin/env bash
# Make sure the services the tests use answer: PostgreSQL (MIVA_CONNECT_TEST_DATABASE_URL)
# and Redis on 127.0.0.1:6379. Start the local ones when they are the defaults and
# nothing listens; otherwise say how to get them.
set -euo pipefail

answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() {
  for _ in $(seq 1 30); do answers "$1" "$2" && return 0; sleep 1; done
  return 1
}

url="${MIVA_CONNECT_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=5432

if ! answers "$host" "$port"; then
  if [ "$host" = "127.0.0.1" ] && [ "$port" = 5432 ] && command -v pg_ctlcluster >/dev/null \
      && [ -d /etc/postgresql ]; then
    version="$(ls /etc/postgresql | sort -V | tail -n 1)"
    echo "starting the local PostgreSQL $version cluster"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  if ! wait_for "$host" "$port"; then
    echo "No PostgreSQL answers at $host:$port." >&2
    echo "Start one (Debian: pg_ctlcluster \$(ls /etc/postgresql) main start), or point" >&2
    echo "MIVA_CONNECT_TEST_DATABASE_URL at a server where the user may create databases." >&2
    exit 1
  fi
fi

if ! answers 127.0.0.1 6379; then
  if command -v redis-server >/dev/null; then
    echo "starting a local Redis (no persistence)"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  fi
  if ! wait_for 127.0.0.1 6379; then
    echo "No Redis answers at 127.0.0.1:6379 (the shared rate-limit tests need one)." >&2
    echo "Start one: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''" >&2
    exit 1
  fi
fi
