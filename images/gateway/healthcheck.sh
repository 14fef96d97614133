#!/bin/bash
# supamanager-healthcheck: healthy when the gateway's own /health answers 200 (bash /dev/tcp; the
# image has no curl).
set -euo pipefail
exec 3<>"/dev/tcp/127.0.0.1/${GATEWAY_PORT:-8000}"
printf 'GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
timeout 5 head -n 1 <&3 | grep -q ' 200 '
