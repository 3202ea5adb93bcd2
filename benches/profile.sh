#!/usr/bin/env bash
# Where a hello request's time goes in a wsgid worker. Three views, each reproducible:
#   1. CPU per request split by thread (the guardian "wsgid-guard" vs "python-K"),
#      user and system, from /proc/PID/task/*/stat around a FastCGI load run;
#   2. system calls per request of the worker (strace -c; strace slows the run, so use
#      the counts per request, not the times);
#   3. instructions per request (valgrind --tool=callgrind, following the master into the
#      interpreter it execs for the worker). Pass --callgrind to include it (slow: about
#      a minute).
# Usage: benches/profile.sh [--threads N] [--callgrind]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=1
callgrind=0
while [ $# -gt 0 ]; do
    case $1 in
        --threads) threads=$2; shift 2 ;;
        --callgrind) callgrind=1; shift ;;
        *) echo "usage: $0 [--threads N] [--callgrind]" >&2; exit 2 ;;
    esac
done

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
# wsgid, libwsgid.so and fcgi_load, built by one command (see there).
BUILD=release benches/build.sh "$work" fcgi_load
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HZ=$(getconf CLK_TCK)

# As root, the application may run as root (wsgid refuses that by default).
root_args=()
if [ "$(id -u)" = 0 ]; then root_args=(--allow-root); fi

# 1 and 2: a normal daemon.
p=$(port)
(cd fixtures && exec "$work/wsgid" --fastcgi 127.0.0.1:$p --threads "$threads" "${root_args[@]}" hello.py) >"$work/log" 2>&1 &
master=$!
for _ in $(seq 100); do grep -q "wsgid ready" "$work/log" && break; sleep 0.1; done
worker=$(pgrep -P $master | head -1)
"$work/fcgi_load" --addr 127.0.0.1:$p --connections 16 --duration 1 --keep-conn >/dev/null
snap() { for t in /proc/$worker/task/*; do echo "$(tr ' ' _ <"$t/comm") $(cut -d' ' -f14,15 "$t/stat")"; done | sort; }
snap >"$work/a"
result=$("$work/fcgi_load" --addr 127.0.0.1:$p --connections 16 --duration 5 --keep-conn | grep RESULT)
snap >"$work/b"
n=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$result")
echo "== 1. CPU per request by thread (1 worker x $threads threads, 16 keep-alive connections)"
echo "$result"
paste "$work/a" "$work/b" | awk -v n="$n" -v hz="$HZ" '{u=($5-$2)*1e6/hz/n; s=($6-$3)*1e6/hz/n;
    if (u+s>0.01) printf "  %-16s user %5.2f us  system %5.2f us\n", $1, u, s; tu+=u; ts+=s}
    END {printf "  %-16s user %5.2f us  system %5.2f us\n", "total", tu, ts}'

if command -v strace >/dev/null; then
    echo "== 2. system calls per request (worker, under strace)"
    strace -c -f -p "$worker" -o "$work/strace" &
    st=$!
    sleep 0.5
    result=$("$work/fcgi_load" --addr 127.0.0.1:$p --connections 16 --duration 3 --keep-conn | grep RESULT)
    kill -INT $st; wait $st 2>/dev/null || true
    n=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$result")
    awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $(NF-1) ~ /^[0-9]+$/ && $NF != "total" {
        calls = ($(NF-2) ~ /^[0-9]+$/ && NF == 6) ? $(NF-2) : $(NF-1); if (NF==5) calls=$4;
        printf "  %-14s %6.2f per request\n", $NF, calls/n }' "$work/strace" | sort -k2 -rn | head -10
else
    echo "== 2. skipped: strace not installed"
fi
kill -TERM $master; wait $master 2>/dev/null || true

if [ "$callgrind" = 1 ]; then
    echo "== 3. instructions per request (callgrind, following the master into its worker)"
    p=$(port)
    (cd fixtures && exec valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$work/callgrind.%p" "$work/wsgid" --fastcgi 127.0.0.1:$p \
        --threads "$threads" "${root_args[@]}" hello.py) >"$work/cg.log" 2>&1 &
    vg=$!
    for _ in $(seq 300); do grep -q "worker ready" "$work/cg.log" 2>/dev/null && break; sleep 0.2; done
    worker=$(pgrep -P $vg | head -1)
    result=$("$work/fcgi_load" --addr 127.0.0.1:$p --connections 2 --duration 8 --keep-conn | grep RESULT)
    n=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$result")
    kill -TERM "$vg"; wait "$vg" 2>/dev/null || true
    callgrind_annotate --inclusive=yes "$work/callgrind.$worker" 2>/dev/null | awk -v n="$n" '
        /PROGRAM TOTALS/ {gsub(",","",$1); printf "  all threads, incl. start-up: %d instructions per request\n", $1/n}
        /wsgid::worker::event_loop::EventLoop::turn \[/ && !io {io=1; gsub(",","",$1); printf "  reactor turns:               %d per request\n", $1/n}
        /src\/environ.rs:wsgid::environ::build \[/ {gsub(",","",$1); printf "  environ::build:              %d per request\n", $1/n}
        /src\/protocol\/fastcgi\/conn.rs:wsgid::protocol::fastcgi::conn::Connection::receive \[/ {gsub(",","",$1); printf "  FastCGI decoding:            %d per request\n", $1/n}'
fi
