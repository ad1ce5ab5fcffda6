#!/usr/bin/env bash
# Serving benchmark: `mirror serve` vs nginx on the same tree, same machine,
# same run, measured with wrk. Prints requests/s and transfer rate, and the
# ratio to nginx, for: a small file (a .sha256), a small .crate through the
# `/crates/{name}/{name}-{ver}.crate` rewrite (nginx: romt-style rewrite
# rules), a sparse index file (mirror: read from the git index; nginx: the
# same file checked out), a 1 MiB file, a 100 MB file, and 404s — at each
# connection count. With htpasswd (apache2-utils) it also measures the
# small file and the crate with an access log written and basic auth
# checked, on both sides (`+ops`: mirror --access-log --auth-file, nginx
# access_log + auth_basic with the same bcrypt file).
#
#   bench/serve.sh            (needs nginx and wrk: apt-get install nginx-light wrk)
#
# Environment: DURATION (default 5s), CONNECTIONS (default "32 256"),
# THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32 256}
THREADS=${THREADS:-2}
for tool in nginx wrk; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx-light wrk)" >&2; exit 1; }
done
if [ -z "${MIRROR:-}" ]; then
    cargo build --release --quiet
    MIRROR=$PWD/target/release/mirror
fi

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null; rm -rf "$work"' EXIT
tree=$work/tree
mkdir -p "$tree/rustup/dist/x86_64-unknown-linux-gnu"
chmod 755 "$work"   # nginx workers run as an unprivileged user
head -c 1048576 /dev/urandom > "$tree/rustup/dist/x86_64-unknown-linux-gnu/rustup-init"
(cd "$tree/rustup/dist/x86_64-unknown-linux-gnu" && sha256sum rustup-init > rustup-init.sha256)
head -c 100000000 /dev/urandom > "$tree/rustup/dist/x86_64-unknown-linux-gnu/big.bin"
# A crate and its index file: crates/se/rd/serde/serde-1.0.0.crate; the
# git index's master holds se/rd/serde (mirror serves it from git), and
# nginx gets the same file checked out under index/.
mkdir -p "$tree/crates/se/rd/serde" "$tree/index/se/rd"
head -c 30000 /dev/urandom > "$tree/crates/se/rd/serde/serde-1.0.0.crate"
ck=$(sha256sum "$tree/crates/se/rd/serde/serde-1.0.0.crate" | cut -d' ' -f1)
for v in 0 1 2 3 4 5 6 7 8 9; do
    printf '{"name":"serde","vers":"1.0.%s","deps":[],"cksum":"%s","features":{},"yanked":false}\n' "$v" "$ck"
done > "$tree/index/se/rd/serde"
printf '{"dl":"http://127.0.0.1/crates","api":"http://127.0.0.1"}\n' > "$tree/index/config.json"
git init -q --bare "$tree/git/crates.io-index"
(export GIT_DIR=$tree/git/crates.io-index GIT_WORK_TREE=$tree/index
 git add -A && git -c user.name=b -c user.email=b@l commit -q -m index && git branch -M master)
chmod -R a+rX "$tree"

mport=18401
nport=18402
"$MIRROR" --root "$tree" -q serve --port $mport &
oport=18403
noport=18404
ops=""
if command -v htpasswd >/dev/null; then
    ops=1
    htpasswd -B -b -c "$work/htpasswd" bench bench-pw 2>/dev/null
    chmod 644 "$work/htpasswd"
    "$MIRROR" --root "$tree" -q serve --port $oport --access-log "$work/mirror-access.log" \
        --auth-file "$work/htpasswd" &
fi
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
    server {
        listen 127.0.0.1:$nport;
        root $tree;
        # romt's rewrite: /crates/NAME/NAME-VER.crate -> crates/PREFIX/NAME/...
        rewrite "^/crates/([^/][^/])([^/][^/])([^/]*)/([^/]+)$" /crates/\$1/\$2/\$1\$2\$3/\$4 break;
    }
    server {
        listen 127.0.0.1:$noport;
        root $tree;
        access_log $work/nginx-access.log combined;
        auth_basic mirror;
        auth_basic_user_file $work/htpasswd;
        rewrite "^/crates/([^/][^/])([^/][^/])([^/]*)/([^/]+)$" /crates/\$1/\$2/\$1\$2\$3/\$4 break;
    }
}
CONF
mkdir -p "$work/nginx-tmp"
nginx -c "$work/nginx.conf" -p "$work"
# Files changed in the last 2 s are not kept in memory by mirror (their
# ctime could still be shared with a change to come); a served tree's
# files are older than that.
sleep 3
curl -sf "http://127.0.0.1:$mport/health" >/dev/null
[ -z "$ops" ] || curl -sf "http://127.0.0.1:$oport/health" >/dev/null
curl -sf "http://127.0.0.1:$nport/rustup/dist/x86_64-unknown-linux-gnu/rustup-init.sha256" >/dev/null

rate() { # url [wrk args…] -> "requests/s transfer/s"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "$@" |
        awk '/Requests\/sec/ {r=$2} /Transfer\/sec/ {t=$2} END {print r, t}'
}
curl -sf "http://127.0.0.1:$nport/crates/serde/serde-1.0.0.crate" >/dev/null
curl -sf "http://127.0.0.1:$mport/crates/serde/serde-1.0.0.crate" >/dev/null
curl -sf "http://127.0.0.1:$mport/index/se/rd/serde" >/dev/null
printf '%-6s %-8s %14s %12s %14s %12s %8s\n' conns case "mirror req/s" "mirror B/s" "nginx req/s" "nginx B/s" ratio
for conns in $CONNECTIONS; do
    for case in small:rustup/dist/x86_64-unknown-linux-gnu/rustup-init.sha256 \
                crate:crates/serde/serde-1.0.0.crate \
                sparse:index/se/rd/serde \
                1MiB:rustup/dist/x86_64-unknown-linux-gnu/rustup-init \
                100MB:rustup/dist/x86_64-unknown-linux-gnu/big.bin \
                404:no/such/file \
                ${ops:+small+ops:rustup/dist/x86_64-unknown-linux-gnu/rustup-init.sha256} \
                ${ops:+crate+ops:crates/serde/serde-1.0.0.crate}; do
        name=${case%%:*}
        path=${case#*:}
        mp=$mport np=$nport auth=()
        if [ "${name%+ops}" != "$name" ]; then
            mp=$oport np=$noport
            auth=(-H "Authorization: Basic $(printf bench:bench-pw | base64)")
        fi
        read -r mr mt < <(CONNECTIONS=$conns rate "http://127.0.0.1:$mp/$path" "${auth[@]}")
        read -r nr nt < <(CONNECTIONS=$conns rate "http://127.0.0.1:$np/$path" "${auth[@]}")
        if [ "$name" = 100MB ]; then   # seconds per request: compare bytes/s
            ratio=$(awk -v a="$mt" -v b="$nt" 'function n(x) { u = substr(x, length(x) - 1);
                v = x + 0; return v * (u == "GB" ? 1e9 : u == "MB" ? 1e6 : u == "KB" ? 1e3 : 1) }
                BEGIN { printf "%.2f", n(a) / n(b) }')
        else
            ratio=$(awk -v a="$mr" -v b="$nr" 'BEGIN { printf "%.2f", a / b }')
        fi
        printf '%-6s %-8s %14s %12s %14s %12s %8s\n' "$conns" "$name" "$mr" "$mt" "$nr" "$nt" "$ratio"
    done
done
echo "(ratio = mirror req/s / nginx req/s, bytes/s for 100MB; $THREADS wrk threads, $DURATION each, $(nproc) cores shared by client and server)"
