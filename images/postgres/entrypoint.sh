#!/bin/bash
# supamanager-postgres-entrypoint: first start initialises $PGDATA (initdb, password, pg_hba, init
# scripts from /docker-entrypoint-initdb.d), every start then execs postgres in the foreground.
# Contract (a subset of the official postgres image's):
#   POSTGRES_PASSWORD        required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER            superuser name (default postgres)
#   POSTGRES_DB              database created on first start (default $POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD  auth for TCP clients (default scram-sha-256)
#   POSTGRES_INITDB_ARGS     extra initdb arguments (word-split)
#   PGDATA                   data directory (default /var/lib/postgresql/data)
# Arguments: none, or postgres options (`-c shared_buffers=64MB`), or another command to exec.
# `docker stop` (SIGTERM) makes postgres do a fast shutdown (see the end of this file).
set -euo pipefail

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

log() { echo "supamanager-postgres-entrypoint: $*" >&2; }

if [ "$#" -eq 0 ] || [ "${1:0:1}" = "-" ]; then
  set -- postgres "$@"
fi

if [ "$1" != "postgres" ]; then
  exec "$@"
fi

# As root: own the data and socket directories, then continue as the postgres user.
if [ "$(id -u)" = "0" ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  chown postgres:postgres /var/run/postgresql
  chmod 2775 /var/run/postgresql
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != "trust" ]; then
    log "POSTGRES_PASSWORD is not set (set it, or POSTGRES_HOST_AUTH_METHOD=trust to allow logins without one)"
    exit 1
  fi
  log "initialising $PGDATA"
  pwfile="$(mktemp)"
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  # shellcheck disable=SC2086
  initdb -D "$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  {
    echo
    echo "# supamanager-postgres-entrypoint"
    echo "listen_addresses = '*'"
  } >>"$PGDATA/postgresql.conf"
  {
    echo
    echo "# supamanager-postgres-entrypoint: any address, password required"
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
  } >>"$PGDATA/pg_hba.conf"

  # A temporary server on the unix socket only: TCP clients (and `pg_isready -h 127.0.0.1`) see
  # nothing until initialisation is complete.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w -t 60 start >/dev/null
  psql_cmd=(psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --no-password)
  if [ "$POSTGRES_DB" != "postgres" ]; then
    "${psql_cmd[@]}" --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then
          log "running $f"
          "$f"
        else
          log "sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql) log "running $f"; "${psql_cmd[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) log "running $f"; gzip -dc "$f" | "${psql_cmd[@]}" --dbname "$POSTGRES_DB" ;;
      *) log "ignoring $f" ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  log "initialised; starting postgres"
fi

# `docker import` cannot set STOPSIGNAL, and postgres takes SIGTERM as a "smart" shutdown that waits
# for every client (pools never leave) until Docker kills it. So postgres runs as our child and a
# SIGTERM/SIGINT to us becomes SIGINT (fast shutdown: abort sessions, checkpoint, exit).
"$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null || true' TERM INT
trap 'kill -QUIT "$pid" 2>/dev/null || true' QUIT
set +e
wait "$pid"
status=$?
while kill -0 "$pid" 2>/dev/null; do
  wait "$pid"
  status=$?
done
exit "$status"
