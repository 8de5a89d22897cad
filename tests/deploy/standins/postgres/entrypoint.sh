#!/bin/sh
# First start: make the cluster with POSTGRES_USER as its superuser (password POSTGRES_PASSWORD)
# and POSTGRES_DB, as the official image's entry point does; then run the server on every
# interface of the container. The first-start server uses a private socket, so `pg_isready`
# answers only once the real one runs.
set -eu
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "POSTGRES_PASSWORD is not set: the database would have no password" >&2
    exit 1
  fi
  init="$(mktemp -d)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$init/pw"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$init/pw" \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$init/pw"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -c unix_socket_directories=$init" start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -h "$init" -U "$POSTGRES_USER" -d postgres -q \
      -c "CREATE DATABASE \"$POSTGRES_DB\""
  fi
  pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
  rmdir "$init" 2>/dev/null || true
  echo "database $POSTGRES_DB created for $POSTGRES_USER"
fi
if [ "${1:-}" = postgres ]; then
  shift
  exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
