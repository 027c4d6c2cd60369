#!/usr/bin/env bash
# Make sure the test Postgres answers: start the local cluster when it is the default
# address and nothing listens; otherwise say how to get one.
set -euo pipefail
url="${MIVA_CONNECT_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=5432

answers() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

answers && exit 0
if [ "$host" = "127.0.0.1" ] && [ "$port" = 5432 ] && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  echo "starting the local PostgreSQL $version cluster"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do answers && exit 0; sleep 1; done
fi
echo "No PostgreSQL answers at $host:$port." >&2
echo "Start one (Debian: pg_ctlcluster \$(ls /etc/postgresql) main start), or point" >&2
echo "MIVA_CONNECT_TEST_DATABASE_URL at a server where the user may create databases." >&2
exit 1
