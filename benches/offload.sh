#!/usr/bin/env bash
# What offloading a file to nginx saves the worker: a 100 MiB file through
# wsgi.file_wrapper (fixtures/offload_app.py), fetched with curl through nginx
# (fastcgi_keep_conn on, an internal location aliasing the file's directory), with
# --offload off and with --offload x-accel-redirect. For each: the worker's bytes read
# (rchar of /proc/PID/io: every read and pread) and CPU time (utime + stime of
# /proc/PID/stat) per download, and curl's time per download; every download's sha256 is
# checked against the file's. Prints a Markdown table (benches/PROFILE.md keeps one).
#
# Usage: benches/offload.sh [--smoke]
#   --smoke  1 download per mode instead of ROUNDS
# Environment: ROUNDS (downloads per mode, default 5), NGINX (default /usr/sbin/nginx),
# BUILD (release, default, or test: see benches/build.sh), CARGO.
# Needs: a Rust toolchain, python3, nginx (nginx-light), curl, sha256sum.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ROUNDS=${ROUNDS:-5}
case "${1:-}" in
    --smoke) ROUNDS=1 ;;
    "") ;;
    *) echo "offload.sh: unknown argument $1" >&2; exit 2 ;;
esac
NGINX=${NGINX:-/usr/sbin/nginx}
for tool in "$NGINX" curl python3 sha256sum; do
    command -v "$tool" >/dev/null || { echo "offload.sh: $tool not found" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wsgid-offload.XXXXXX")
# nginx's workers (nobody, when started as root) open the file themselves.
chmod 755 "$WORK"
WSGID_PID=""
NGINX_PID=""
cleanup() {
    for pid in "$NGINX_PID" "$WSGID_PID"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '== %s\n' "$*" >&2; }
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# rchar and utime + stime (ms) of process $1.
io_cpu() {
    python3 - "$1" <<'EOF'
import os, sys
pid = sys.argv[1]
rchar = next(int(l.split()[1]) for l in open(f"/proc/{pid}/io") if l.startswith("rchar:"))
f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
print(rchar, (int(f[11]) + int(f[12])) * 1000 // os.sysconf("SC_CLK_TCK"))
EOF
}

say "building (${BUILD:-release})"
benches/build.sh "$WORK/bin" fcgi_load
MEDIA=$WORK/media
mkdir -p "$MEDIA" "$WORK/nginx"
head -c 100M /dev/urandom >"$MEDIA/big.bin"
WANT=$(sha256sum "$MEDIA/big.bin" | cut -d' ' -f1)

FCGI_PORT=$(free_port)
NGINX_PORT=$(free_port)
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/client_body;
    fastcgi_temp_path $WORK/nginx/fastcgi_temp;
    proxy_temp_path $WORK/nginx/proxy_temp;
    scgi_temp_path $WORK/nginx/scgi_temp;
    uwsgi_temp_path $WORK/nginx/uwsgi_temp;
    upstream wsgid { server 127.0.0.1:$FCGI_PORT; keepalive 4; }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_keep_conn on;
            fastcgi_pass wsgid;
            fastcgi_buffer_size 64k;
            fastcgi_buffers 16 64k;
        }
        location /_protected/media/ {
            internal;
            alias $MEDIA/;
        }
    }
}
EOF
"$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" \
    >"$WORK/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
wait_port "$NGINX_PORT" || { echo "offload.sh: nginx did not start" >&2; exit 1; }

ROOT_ARGS=()
if [ "$(id -u)" = 0 ]; then ROOT_ARGS=(--allow-root); fi
URL="http://127.0.0.1:$NGINX_PORT/file?path=$MEDIA/big.bin&cl=size"
ROWS=()
for mode in off x-accel-redirect; do
    say "--offload $mode: $ROUNDS downloads of 100 MiB"
    "$WORK/bin/wsgid" offload_app --chdir "$ROOT/fixtures" --fastcgi "127.0.0.1:$FCGI_PORT" --threads 1 \
        --offload "$mode" --offload-map "$MEDIA=/_protected/media" "${ROOT_ARGS[@]}" \
        >"$WORK/wsgid-$mode.log" 2>&1 &
    WSGID_PID=$!
    wait_port "$FCGI_PORT" || { cat "$WORK/wsgid-$mode.log" >&2; exit 1; }
    for _ in $(seq 50); do grep -q 'wsgid ready' "$WORK/wsgid-$mode.log" && break; sleep 0.1; done
    WORKER=$(ps -o pid= --ppid "$WSGID_PID" | tr -d ' ' | head -1)
    curl -sf "http://127.0.0.1:$NGINX_PORT/hello" >/dev/null
    read -r r0 c0 < <(io_cpu "$WORKER")
    total=0
    for _ in $(seq "$ROUNDS"); do
        t=$(curl -sS -f -o "$WORK/got.bin" -w "%{time_total}" "$URL") || { tail -n 5 "$WORK/wsgid-$mode.log" "$WORK/nginx/error.log" >&2; exit 1; }
        total=$(python3 -c "print($total + $t)")
        got=$(sha256sum "$WORK/got.bin" | cut -d' ' -f1)
        [ "$got" = "$WANT" ] || { echo "offload.sh: $mode: the bytes differ" >&2; exit 1; }
    done
    read -r r1 c1 < <(io_cpu "$WORKER")
    ROWS+=("$(python3 -c "
n = $ROUNDS
print(f'| $mode | {($r1 - $r0) / n / 2**20:.2f} MiB | {($c1 - $c0) / n:.0f} ms | {$total / n * 1000:.0f} ms |')")")
    kill -TERM "$WSGID_PID"
    wait "$WSGID_PID" 2>/dev/null || true
    WSGID_PID=""
done

echo "| --offload | worker read per download | worker CPU per download | curl time per download |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
