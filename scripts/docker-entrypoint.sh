#!/bin/sh
# The container's entrypoint: migrate the database, then become the server.
# Settings come from the MIVA_CONNECT_* environment; HOST (0.0.0.0) and PORT (8000) say
# where to listen, WORKERS how many server processes (1; more need MIVA_CONNECT_REDIS_URL).
# A failed migration stops here, with its one-line error, before anything listens.
set -eu

miva-connect db upgrade

# exec: the server replaces this shell, so SIGTERM from `docker stop` reaches it.
exec miva-connect serve --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" --workers "${WORKERS:-1}"
