#!/bin/bash
# supamanager-healthcheck: healthy when Caddy's admin API (loopback only, inside the container)
# answers 200 with a loaded config (bash /dev/tcp; the image has no curl). The admin API checks the
# Host header against its listen address, hence `Host: localhost:2019`.
set -euo pipefail
exec 3<>/dev/tcp/127.0.0.1/2019
printf 'GET /config/ HTTP/1.0\r\nHost: localhost:2019\r\n\r\n' >&3
timeout 5 head -n 1 <&3 | grep -q ' 200 '
