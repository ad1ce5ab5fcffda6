#!/usr/bin/env bash
# Serving benchmark: `mirror serve` vs nginx on the same tree, same machine,
# same run, measured with wrk. Prints requests/s and transfer rate for a
# small file (a .sha256), a 1 MiB file, and 404s, and the ratio to nginx.
#
#   bench/serve.sh            (needs nginx and wrk: apt-get install nginx-light wrk)
#
# Environment: DURATION (default 5s), CONNECTIONS (default 64), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
for tool in nginx wrk; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx-light wrk)" >&2; exit 1; }
done
cargo build --release --quiet
MIRROR=target/release/mirror

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
tree=$work/tree
mkdir -p "$tree/rustup/dist/x86_64-unknown-linux-gnu"
chmod 755 "$work"   # nginx workers run as an unprivileged user
head -c 1048576 /dev/urandom > "$tree/rustup/dist/x86_64-unknown-linux-gnu/rustup-init"
(cd "$tree/rustup/dist/x86_64-unknown-linux-gnu" && sha256sum rustup-init > rustup-init.sha256)
chmod -R a+rX "$tree"

mport=18401
nport=18402
"$MIRROR" --root "$tree" -q serve --port $mport &
cat > "$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types { application/octet-stream sha256; }
    client_body_temp_path $work/nginx-tmp;
    proxy_temp_path $work/nginx-tmp;
    fastcgi_temp_path $work/nginx-tmp;
    uwsgi_temp_path $work/nginx-tmp;
    scgi_temp_path $work/nginx-tmp;
    server { listen 127.0.0.1:$nport; root $tree; }
}
CONF
mkdir -p "$work/nginx-tmp"
nginx -c "$work/nginx.conf" -p "$work"
sleep 1
curl -sf "http://127.0.0.1:$mport/health" >/dev/null
curl -sf "http://127.0.0.1:$nport/rustup/dist/x86_64-unknown-linux-gnu/rustup-init.sha256" >/dev/null

rate() { # url -> "requests/s transfer/s"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$1" |
        awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2} END {print r, t}'
}
printf '%-14s %14s %12s %14s %12s %8s\n' case "mirror req/s" "mirror B/s" "nginx req/s" "nginx B/s" ratio
for case in small:rustup/dist/x86_64-unknown-linux-gnu/rustup-init.sha256 \
            1MiB:rustup/dist/x86_64-unknown-linux-gnu/rustup-init \
            404:no/such/file; do
    name=${case%%:*}
    path=${case#*:}
    read -r mr mt < <(rate "http://127.0.0.1:$mport/$path")
    read -r nr nt < <(rate "http://127.0.0.1:$nport/$path")
    ratio=$(awk -v a="$mr" -v b="$nr" 'BEGIN { printf "%.2f", a / b }')
    printf '%-14s %14s %12s %14s %12s %8s\n' "$name" "$mr" "$mt" "$nr" "$nt" "$ratio"
done
echo "(ratio = mirror req/s / nginx req/s; $CONNECTIONS connections, $THREADS wrk threads, $DURATION each, $(nproc) cores shared by client and server)"
