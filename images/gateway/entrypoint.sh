#!/bin/bash
# supamanager-gateway-entrypoint: a stand-in API gateway. Renders an nginx config from the
# environment, then execs nginx in the foreground.
#   GATEWAY_PORT     listen port (default 8000)
#   PG_META_URL      upstream for /pg/ (e.g. http://meta:8080); /pg/x is proxied to $PG_META_URL/x
#   GATEWAY_ROUTES   more routes, space-separated `prefix=url` pairs, e.g. "/rest/v1/=http://rest:3000"
#                    (prefix starts and ends with '/'; the prefix is stripped; url may carry a base path)
#   GATEWAY_ACCESS_LOG  "on" (default, to stdout) or "off"
#   GATEWAY_SERVICE_KEY the project's service-role key; required when there is any route. Every
#                    routed request must carry it, as `apikey: <key>` or `Authorization: Bearer <key>`
#                    (`apikey` wins when both are sent), else it answers 401 JSON without reaching the
#                    upstream. The key itself is not written into the config: only an MD5 over a
#                    random per-start salt and the key, which nginx's secure_link module compares
#                    with the same digest of what the request presents (a fixed-size digest
#                    comparison, so the time taken says nothing about how much of the key matched).
# Always: GET /health answers 200 "ok" (no key: the health check uses it); anything unrouted
# answers 404 JSON.
# Upstream names are resolved per request (Docker's DNS), so upstreams may start after the gateway.
set -euo pipefail

port="${GATEWAY_PORT:-8000}"
conf=/etc/nginx/supamanager-gateway.conf
fail() { echo "supamanager-gateway-entrypoint: $*" >&2; exit 1; }

[[ "$port" =~ ^[0-9]+$ ]] || fail "GATEWAY_PORT must be a number, got '$port'"

routes=()
[ -n "${PG_META_URL:-}" ] && routes+=("/pg/=${PG_META_URL}")
if [ -n "${GATEWAY_ROUTES:-}" ]; then
  read -r -a extra <<<"$GATEWAY_ROUTES"
  routes+=("${extra[@]}")
fi

key_digest=""
salt=""
if [ "${#routes[@]}" -gt 0 ]; then
  key="${GATEWAY_SERVICE_KEY:-}"
  [ -n "$key" ] || fail "GATEWAY_SERVICE_KEY is required when the gateway forwards anything (it is the only key routes accept)"
  [[ "$key" =~ ^[A-Za-z0-9._~+/=-]+$ ]] || fail "GATEWAY_SERVICE_KEY holds characters a header value cannot carry"
  salt="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  hex="$(printf '%s%s' "$salt" "$key" | md5sum | cut -c1-32)"
  # secure_link wants the expected digest base64url-encoded without padding.
  # shellcheck disable=SC2059
  key_digest="$(printf "$(sed 's/../\\x&/g' <<<"$hex")" | base64 | tr '+/' '-_' | tr -d '=\n')"
  unset key hex
fi

resolver="$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)"
case "$resolver" in *:*) resolver="[$resolver]" ;; esac

access_log="/dev/stdout"
[ "${GATEWAY_ACCESS_LOG:-on}" = "off" ] && access_log="off"

{
  cat <<NGINX
# Rendered by supamanager-gateway-entrypoint at container start.
user www-data;
worker_processes 1;
pid /run/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log $access_log;
  default_type application/octet-stream;
  client_max_body_size 100m;
  proxy_http_version 1.1;
  proxy_read_timeout 300s;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  # The key a request presents: its apikey header, else the token of \`Authorization: Bearer\`.
  map \$http_authorization \$supamanager_bearer { default ""; "~^[Bb]earer[ ]+([^ ]+)[ ]*\$" \$1; }
  map \$http_apikey \$supamanager_presented_key { "" \$supamanager_bearer; default \$http_apikey; }
NGINX
  [ -n "$resolver" ] && echo "  resolver $resolver valid=5s ipv6=off;"
  cat <<NGINX
  server {
    listen $port;
    location = /health { default_type text/plain; return 200 'ok'; }
    error_page 401 = @unauthorized;
    location @unauthorized {
      default_type application/json;
      return 401 '{"message":"Invalid or missing service key: send the project service-role key as the apikey header or as Authorization: Bearer","code":"unauthorized"}';
    }
NGINX
  i=0
  for route in "${routes[@]}"; do
    prefix="${route%%=*}"
    url="${route#*=}"
    [[ "$prefix" =~ ^/([A-Za-z0-9._~-]+/)*$ ]] || fail "route prefix must look like /a/b/, got '$prefix'"
    [[ "$url" =~ ^(https?://[A-Za-z0-9.:_-]+)(/[A-Za-z0-9._~/-]*)?$ ]] || fail "route url must look like http://host:port[/path], got '$url'"
    origin="${BASH_REMATCH[1]}"
    base="${BASH_REMATCH[2]%/}"
    i=$((i + 1))
    cat <<NGINX
    location ^~ $prefix {
      secure_link $key_digest;
      secure_link_md5 "$salt\$supamanager_presented_key";
      if (\$secure_link != "1") { return 401; }
      set \$upstream_$i $origin;
      rewrite ^${prefix}(.*)\$ $base/\$1 break;
      proxy_pass \$upstream_$i;
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Prefix ${prefix%/};
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade;
    }
NGINX
  done
  cat <<'NGINX'
    location / { default_type application/json; return 404 '{"message":"no route","code":"not_found"}'; }
  }
}
NGINX
} >"$conf"

if [ "$#" -gt 0 ]; then
  exec "$@"
fi
exec nginx -c "$conf" -g 'daemon off;'
