#!/bin/sh
# supamanager-healthcheck: healthy once postgres accepts TCP connections (not during first-start
# initialisation, when only the unix socket is open).
exec pg_isready -q -h 127.0.0.1 -p "${PGPORT:-5432}" -U "${POSTGRES_USER:-postgres}" -d postgres
