#!/usr/bin/env bash
# Benchmarks wsgid serving fixtures/hello.py and writes BENCHMARKS.md at the repository root.
#
# For each worker layout (1 process x 1 thread, 2 x 1, 1 x 8) it measures
#   (a) wrk -> nginx (fastcgi_keep_conn on, upstream keepalive 32) -> wsgid, and
#   (b) benches/fcgi_load straight at wsgid's FastCGI socket (FCGI_KEEP_CONN),
# with wsgid's CPU time per request (utime + stime of the master and its workers, from
# /proc) and the resident memory of each process; then (c) the criterion benchmark of the
# pure-Rust per-request path (benches/overhead.rs); then (d) wrk through nginx while SIGHUP
# reloads wsgid every DURATION/5 s (p99, errors, time to replace every worker), and the
# master's memory with 8 apps configured.
#
# Usage: benches/run.sh [--smoke] [--out FILE]
#   --smoke     1-second runs that only check that everything works (non-zero exit on any
#               error); the report goes to benches/results/BENCHMARKS-smoke.md
#   --out FILE  write the report to FILE instead
# Environment: DURATION (seconds per measured run, default 10), CONNECTIONS (fcgi_load
# connections, default 32 like wrk's -c32), LAYOUTS (default "1x1 2x1 1x8": processes x
# threads), NGINX (default /usr/sbin/nginx), WRK (default wrk), CARGO (default cargo),
# BUILD (default release; "test" runs the debug build `cargo test` makes: see
# benches/build.sh).
# Needs: a Rust toolchain, python3 (the workers' interpreter; also parses JSON here), Debian's
# nginx (nginx-light) and wrk: apt-get install nginx-light wrk python3-dev.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SMOKE=0
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --out)
            [ $# -ge 2 ] || { echo "run.sh: --out needs a file" >&2; exit 2; }
            OUT=$2
            shift
            ;;
        -h | --help)
            sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$SMOKE" = 1 ]; then
    DURATION=1
    WARMUP=0.3
    OUT=${OUT:-benches/results/BENCHMARKS-smoke.md}
else
    DURATION=${DURATION:-10}
    WARMUP=2
    OUT=${OUT:-BENCHMARKS.md}
fi
case "$DURATION" in
    '' | *[!0-9]* | 0) echo "run.sh: DURATION must be a whole number of seconds >= 1" >&2; exit 2 ;;
esac
CONNECTIONS=${CONNECTIONS:-32}
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
CARGO=${CARGO:-cargo}
# Worker layouts, PROCESSESxTHREADS.
LAYOUTS=${LAYOUTS:-1x1 2x1 1x8}
for layout in $LAYOUTS; do
    case "$layout" in
        [1-9]*x[1-9]*) ;;
        *) echo "run.sh: LAYOUTS holds $layout, not PROCESSESxTHREADS" >&2; exit 2 ;;
    esac
done

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

for tool in "$NGINX" "$WRK" python3 "$CARGO"; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install nginx-light wrk)"
done

# The 1-minute load average before anything starts: above 0.5 the figures are noisy.
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wsgid-bench.XXXXXX")
WSGID_PID=""
NGINX_PID=""
FAILED=0

stop_wsgid() {
    [ -n "$WSGID_PID" ] || return 0
    local workers
    workers=$(child_pids "$WSGID_PID")
    kill -TERM "$WSGID_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$WSGID_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$WSGID_PID" 2>/dev/null; then
        kill -KILL "$WSGID_PID" 2>/dev/null || true
        for w in $workers; do kill -KILL "$w" 2>/dev/null || true; done
    fi
    wait "$WSGID_PID" 2>/dev/null || true
    WSGID_PID=""
}

stop_nginx() {
    [ -n "$NGINX_PID" ] || return 0
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
}

cleanup() {
    stop_nginx
    stop_wsgid
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

child_pids() { ps -o pid= --ppid "$1" 2>/dev/null | tr -s ' \n' ' ' || true; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    local port=$1
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Sum of utime + stime (clock ticks) of the given pids (fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that closes the command name, which may hold spaces).
cpu_ticks() {
    local total=0 pid rest f
    for pid in "$@"; do
        rest=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        read -ra f <<<"$rest"
        # f[0] is field 3 (state): utime is f[11], stime f[12].
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# A number rounded to an integer; anything else as it is.
int() {
    case "$1" in
        [0-9]*) printf '%.0f' "$1" ;;
        *) printf '%s' "$1" ;;
    esac
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

# ---------------------------------------------------------------- build
say "building (${BUILD:-release})"
# Copies, so that a rebuild during the run cannot swap a binary under it.
benches/build.sh "$WORK/bin" fcgi_load overhead
WSGID=$WORK/bin/wsgid
LOAD=$WORK/bin/fcgi_load
APP=$ROOT/fixtures/hello.py
[ -f "$APP" ] || die "$APP is missing"

# ---------------------------------------------------------------- nginx
FCGI_PORT=$(free_port)
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;

events { worker_connections 1024; }

http {
    access_log off;
    client_body_temp_path $WORK/nginx/client_body;
    fastcgi_temp_path $WORK/nginx/fastcgi_temp;
    proxy_temp_path $WORK/nginx/proxy_temp;
    scgi_temp_path $WORK/nginx/scgi_temp;
    uwsgi_temp_path $WORK/nginx/uwsgi_temp;

    upstream wsgid {
        server 127.0.0.1:$FCGI_PORT;
        keepalive 32;
    }

    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name localhost;
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_keep_conn on;
            fastcgi_pass wsgid;
        }
    }
}
EOF

start_nginx() {
    "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" \
        >>"$WORK/nginx/stdout.log" 2>&1 &
    NGINX_PID=$!
    wait_port "$NGINX_PORT" || die "nginx did not start: $(tail -5 "$WORK/nginx/error.log")"
}

# ---------------------------------------------------------------- runs
# Result rows: layout|client|rps|p50|p99|max|errors|cpu_us|requests
ROWS=()
RSS=()

# Runs "$@" (a measured load), printing its output to stderr, with wsgid's CPU ticks
# counted around it. Sets RUN_OUT and RUN_TICKS.
measure() {
    local pids before after
    pids="$WSGID_PID $(child_pids "$WSGID_PID")"
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pids)
    RUN_OUT=$("$@" 2>&1) || true
    # shellcheck disable=SC2086
    after=$(cpu_ticks $pids)
    RUN_TICKS=$((after - before))
    printf '%s\n' "$RUN_OUT" | sed 's/^/   /' >&2
}

# µs of CPU per request from RUN_TICKS.
cpu_per_req() {
    python3 -c 'import os, sys
t, n = int(sys.argv[1]), int(sys.argv[2])
hz = os.sysconf("SC_CLK_TCK")
print(f"{t / hz * 1e6 / n:.1f}" if n else "-")' "$RUN_TICKS" "$1"
}

# Parses wrk --latency output on stdin: rps p50 p99 max errors requests (latencies in µs).
parse_wrk() {
    python3 -c '
import re, sys
text = sys.stdin.read()
def us(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    if not m:
        return "?"
    f = float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[m.group(2)]
    return f"{f:.1f}"
def find(pat, default="0"):
    m = re.search(pat, text, re.M)
    return m.group(1) if m else default
req = find(r"^\s*(\d+) requests in")
rps = find(r"^Requests/sec:\s*([\d.]+)")
p50 = us(find(r"^\s*50%\s+(\S+)", "?"))
p99 = us(find(r"^\s*99%\s+(\S+)", "?"))
mx = us(find(r"^\s*Latency\s+\S+\s+\S+\s+(\S+)", "?"))
errors = int(find(r"Non-2xx or 3xx responses:\s*(\d+)"))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    errors += sum(int(g) for g in m.groups())
print(rps, p50, p99, mx, errors, req)
'
}

# Parses the RESULT line of fcgi_load: rps p50 p99 max errors requests.
parse_load() {
    python3 -c '
import sys
kv = {}
for line in sys.stdin:
    if line.startswith("RESULT "):
        kv = dict(f.split("=", 1) for f in line.split()[1:])
print(*(kv.get(k, "?") for k in ("rps", "p50_us", "p99_us", "max_us", "errors", "requests")))
'
}

check_run() {
    local what=$1 errors=$2 requests=$3
    if [ "$errors" != 0 ] || [ "$requests" = 0 ] || [ "$requests" = "?" ]; then
        echo "run.sh: $what: $requests requests, $errors errors" >&2
        FAILED=1
    fi
}

WRK_CMD=("$WRK" -t2 -c32 "-d${DURATION}s" --latency "http://127.0.0.1:$NGINX_PORT/")

# Starts nginx and warms it (and wsgid behind it) up.
start_nginx_warm() {
    start_nginx
    "$WRK" -t2 -c32 "-d${WARMUP}s" "http://127.0.0.1:$NGINX_PORT/" >/dev/null 2>&1 || true
}

# One measured wrk run (WRK_CMD), checked as "$1": sets W_RPS W_P50 W_P99 W_MAX W_ERR W_REQ
# (and RUN_TICKS, through measure).
measure_wrk() {
    measure "${WRK_CMD[@]}"
    read -r W_RPS W_P50 W_P99 W_MAX W_ERR W_REQ < <(printf '%s\n' "$RUN_OUT" | parse_wrk)
    check_run "$1" "$W_ERR" "$W_REQ"
}
# As root, the hello-world application may run as root (wsgid refuses that by default).
ROOT_ARGS=()
if [ "$(id -u)" = 0 ]; then ROOT_ARGS=(--allow-root); fi

LOAD_CMD=("$LOAD" --addr "127.0.0.1:$FCGI_PORT" --connections "$CONNECTIONS"
    --duration "$DURATION" --keep-conn)

for name in $LAYOUTS; do
    procs=${name%x*}
    threads=${name#*x}
    say "wsgid $name: --processes $procs --threads $threads"
    "$WSGID" "$APP" --fastcgi "127.0.0.1:$FCGI_PORT" --processes "$procs" --threads "$threads" \
        "${ROOT_ARGS[@]}" >"$WORK/wsgid-$name.log" 2>&1 &
    WSGID_PID=$!
    wait_port "$FCGI_PORT" || die "wsgid did not start: $(tail -5 "$WORK/wsgid-$name.log")"
    # Warm-up, which also waits for the workers to load the application.
    ok=0
    for _ in $(seq 20); do
        if "$LOAD" --addr "127.0.0.1:$FCGI_PORT" --connections 2 --duration "$WARMUP" \
            --keep-conn --name warmup >"$WORK/warmup.log" 2>&1 \
            && grep -q ' errors=0$' "$WORK/warmup.log"; then
            ok=1
            break
        fi
        sleep 0.5
    done
    [ "$ok" = 1 ] || die "wsgid does not answer: $(tail -3 "$WORK/warmup.log"; tail -5 "$WORK/wsgid-$name.log")"

    # (a) wrk -> nginx -> wsgid
    start_nginx_warm
    say "wrk -> nginx -> wsgid ($name)"
    measure_wrk "wrk $name"
    ROWS+=("$name|wrk → nginx → wsgid|$W_RPS|$W_P50|$W_P99|$W_MAX|$W_ERR|$(cpu_per_req "$W_REQ")|$W_REQ")
    stop_nginx

    # (b) fcgi_load -> wsgid
    say "fcgi_load -> wsgid ($name)"
    measure "${LOAD_CMD[@]}" --name "fcgi-$name"
    read -r rps p50 p99 mx errors requests < <(printf '%s\n' "$RUN_OUT" | parse_load)
    check_run "fcgi_load $name" "$errors" "$requests"
    ROWS+=("$name|fcgi_load → wsgid|$rps|$p50|$p99|$mx|$errors|$(cpu_per_req "$requests")|$requests")

    rss="master $(rss_mib "$WSGID_PID")"
    for w in $(child_pids "$WSGID_PID"); do rss+=", worker $(rss_mib "$w")"; done
    RSS+=("$name|$rss")
    stop_wsgid
done

# (c) criterion: the pure-Rust per-request path.
say "criterion: benches/overhead.rs"
if [ "$SMOKE" = 1 ]; then
    # Fewer samples and resamples: the analysis, not the measuring, is what takes long.
    CRIT_ARGS=(--bench --warm-up-time 0.2 --measurement-time 0.5 --sample-size 10 --nresamples 1000)
else
    CRIT_ARGS=(--bench)
fi
CRITERION_HOME="$WORK/criterion" "$WORK/bin/overhead" "${CRIT_ARGS[@]}" >"$WORK/criterion.log" 2>&1 \
    || { cat "$WORK/criterion.log" >&2; die "criterion benchmark failed"; }
sed 's/^/   /' "$WORK/criterion.log" >&2
# Median ns of each part.
read -r CRIT_TOTAL CRIT_DECODE CRIT_ENVIRON CRIT_ENCODE < <(python3 - "$WORK/criterion" <<'EOF'
import json, sys
out = []
for part in ("total", "decode", "environ", "encode"):
    try:
        with open(f"{sys.argv[1]}/per_request/{part}/new/estimates.json") as f:
            out.append(f"{json.load(f)['median']['point_estimate']:.0f}")
    except (OSError, KeyError, ValueError):
        out.append("?")
print(*out)
EOF
)
[ "$CRIT_TOTAL" != "?" ] || { echo "run.sh: no criterion estimate" >&2; FAILED=1; }

# (d) reloads under load, and the master with many apps.
# wsgid (2 workers x 1 thread) from a configuration file behind nginx; wrk runs once
# without reloads and once with SIGHUP every RELOAD_EVERY seconds; then the master's
# RSS with 8 apps configured.
RELOAD_EVERY=$(( DURATION >= 5 ? DURATION / 5 : 1 ))
say "reloads under load: SIGHUP every ${RELOAD_EVERY} s"
RCONF=$WORK/reload.toml
printf 'app = "%s"\nfastcgi = "127.0.0.1:%s"\nprocesses = 2\nthreads = 1\n' "$APP" "$FCGI_PORT" >"$RCONF"
"$WSGID" --config "$RCONF" "${ROOT_ARGS[@]}" >"$WORK/wsgid-reload.log" 2>&1 &
WSGID_PID=$!
wait_port "$FCGI_PORT" || die "wsgid did not start: $(tail -5 "$WORK/wsgid-reload.log")"
for _ in $(seq 50); do grep -q 'wsgid ready' "$WORK/wsgid-reload.log" && break; sleep 0.1; done
start_nginx_warm
say "wrk -> nginx -> wsgid, no reload"
measure_wrk "wrk before reloads"
R0=("$W_RPS" "$W_P99" "$W_MAX" "$W_ERR" "$W_REQ")
say "wrk -> nginx -> wsgid, SIGHUP every ${RELOAD_EVERY} s"
HUP_COUNT=$(( (DURATION - 1) / RELOAD_EVERY > 1 ? (DURATION - 1) / RELOAD_EVERY : 1 ))
(
    sleep 0.5
    for _ in $(seq "$HUP_COUNT"); do
        kill -HUP "$WSGID_PID" 2>/dev/null || true
        sleep "$RELOAD_EVERY"
    done
) &
HUPPER=$!
measure_wrk "wrk during reloads"
wait "$HUPPER" 2>/dev/null || true
R1=("$W_RPS" "$W_P99" "$W_MAX" "$W_ERR" "$W_REQ")
stop_nginx
sleep 1
HUPS=$(grep -c 'SIGHUP: reloading' "$WORK/wsgid-reload.log" || true)
# Seconds from each SIGHUP to its new workers all ready (the master logs it): min median max.
read -r SWAP_N SWAP_MIN SWAP_MED SWAP_MAX < <(python3 - "$WORK/wsgid-reload.log" <<'PYEOF'
import re, statistics, sys
t = [float(m) for m in re.findall(r"new workers ready ([\d.]+) s after the reload", open(sys.argv[1]).read())]
print(len(t), *(f"{v * 1000:.0f}" for v in (min(t), statistics.median(t), max(t)))) if t else print(0, "?", "?", "?")
PYEOF
)
[ "$SWAP_N" -ge 1 ] || { echo "run.sh: no reload completed" >&2; FAILED=1; }
stop_wsgid

say "master with 8 apps"
MCONF=$WORK/apps.toml
: >"$MCONF"
for i in 1 2 3 4 5 6 7 8; do
    printf '[[app]]\nname = "app%s"\napp = "%s"\nfastcgi = "127.0.0.1:%s"\nthreads = 1\n' \
        "$i" "$APP" "$(free_port)" >>"$MCONF"
done
"$WSGID" --config "$MCONF" "${ROOT_ARGS[@]}" >"$WORK/wsgid-apps.log" 2>&1 &
WSGID_PID=$!
for _ in $(seq 100); do grep -q 'wsgid ready' "$WORK/wsgid-apps.log" && break; sleep 0.1; done
grep -q 'wsgid ready: 8 workers' "$WORK/wsgid-apps.log" || { echo "run.sh: 8 apps did not start: $(tail -3 "$WORK/wsgid-apps.log")" >&2; FAILED=1; }
APPS_MASTER_RSS=$(rss_mib "$WSGID_PID")
APPS_WORKER_RSS=$(for w in $(child_pids "$WSGID_PID"); do rss_mib "$w"; echo; done | awk 'NF { s += $1; n++ } END { if (n) printf "%.1f", s / n; else print "?" }')
stop_wsgid

# ---------------------------------------------------------------- report
CPU_MODEL=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
CPUS=$(nproc)
KERNEL=$(uname -sr)
RUSTC=$(rustc --version)
PYBIN=$(sed -n 's/^PYO3_PYTHON *= *"\(.*\)"/\1/p' .cargo/config.toml 2>/dev/null || true)
PYVER=$("${PYBIN:-python3}" --version 2>&1)
NGINXVER=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
# wrk --version prints its version with the usage text and exits 1.
WRKVER=$({ "$WRK" --version 2>&1 || true; } | awk 'NR == 1 { print $1, $2 }')
LOAD_AFTER=$(cut -d' ' -f1 /proc/loadavg)
DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if git diff --quiet HEAD -- src Cargo.toml 2>/dev/null; then DIRTY=""; else DIRTY=" (with uncommitted changes)"; fi

mkdir -p "$(dirname "$OUT")"
# benches/compare.sh keeps its section at the end of the report: carry it over.
COMPARISON=$(sed -n '/^## Comparison with peer servers$/,$p' "$OUT" 2>/dev/null || true)
{
    echo "# wsgid benchmarks"
    echo
    echo "Generated by \`benches/run.sh\` on $DATE, wsgid $COMMIT$DIRTY."
    if [ "$SMOKE" = 1 ]; then
        echo
        echo "**Smoke run** (1-second runs): it only checks that everything works; the figures mean nothing."
    fi
    if [ "${BUILD:-release}" = test ]; then
        echo
        echo "**Debug build** (\`BUILD=test\`, the build of \`cargo test\`): the figures mean nothing."
    fi
    if awk -v l="$LOAD_BEFORE" 'BEGIN { exit !(l >= 0.5) }'; then
        echo
        echo "**The machine was busy**: its 1-minute load average was $LOAD_BEFORE before the run"
        echo "($LOAD_AFTER after), so other work competed for the CPUs and the figures are noisy and"
        echo "lower than on an idle machine."
    fi
    echo
    echo "The application is \`fixtures/hello.py\` (a 14-byte body with Content-Length)."
    echo "Client, nginx and wsgid share the same $CPUS CPUs, so every figure includes"
    echo "the cost of the client. Measured runs last $DURATION s, after a ${WARMUP} s warm-up."
    echo
    echo "## Machine"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| CPU | $CPU_MODEL, $CPUS CPUs |"
    echo "| kernel | $KERNEL |"
    echo "| Rust | $RUSTC |"
    echo "| Python | $PYVER (${PYBIN:-python3}, which the workers run) |"
    echo "| nginx | $NGINXVER |"
    echo "| wrk | $WRKVER |"
    echo
    echo "## Results"
    echo
    echo "Latencies in µs. CPU is wsgid's (master and workers, user + system) per request."
    echo
    echo "| workers × threads | client | req/s | p50 | p99 | max | errors | CPU µs/req | requests |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for row in "${ROWS[@]}"; do
        IFS='|' read -r name client rps p50 p99 mx errors cpu requests <<<"$row"
        echo "| ${name/x/ × } | $client | $(int "$rps") | $(int "$p50") | $(int "$p99") | $(int "$mx") | $errors | $cpu | $requests |"
    done
    echo
    echo "Resident memory (MiB) after the runs:"
    echo
    echo "| workers × threads | RSS |"
    echo "|---|---|"
    for row in "${RSS[@]}"; do
        IFS='|' read -r name rss <<<"$row"
        echo "| ${name/x/ × } | $rss |"
    done
    echo
    echo "Pure-Rust per-request path (criterion, \`benches/overhead.rs\`, median): decoding an"
    echo "nginx FastCGI request, building its environ and encoding the response take"
    echo "**$CRIT_TOTAL ns/request** (decode $CRIT_DECODE ns, environ $CRIT_ENVIRON ns, encode $CRIT_ENCODE ns)."
    echo
    echo "## Reloads and many apps"
    echo
    echo "wsgid from a configuration file (2 workers × 1 thread), wrk → nginx → wsgid as above,"
    echo "once as it is and once with SIGHUP every $RELOAD_EVERY s ($HUPS reloads): every reload starts"
    echo "two new workers beside the old ones, which stop accepting once the new ones serve."
    echo
    echo "| run | req/s | p99 µs | max µs | errors | requests |"
    echo "|---|---:|---:|---:|---:|---:|"
    echo "| no reload | $(int "${R0[0]}") | $(int "${R0[1]}") | $(int "${R0[2]}") | ${R0[3]} | ${R0[4]} |"
    echo "| SIGHUP every $RELOAD_EVERY s | $(int "${R1[0]}") | $(int "${R1[1]}") | $(int "${R1[2]}") | ${R1[3]} | ${R1[4]} |"
    echo
    echo "From SIGHUP to every worker replaced (the new workers all ready, the old ones told to"
    echo "finish), over $SWAP_N reloads: **$SWAP_MED ms** median (min $SWAP_MIN, max $SWAP_MAX)."
    echo
    echo "Master with 8 apps configured (one worker each): master RSS **$APPS_MASTER_RSS MiB**,"
    echo "$APPS_WORKER_RSS MiB per worker on average."
    echo
    echo "Where a hello request's time goes (CPU by thread, system calls, instructions), and how"
    echo "it was measured: [benches/PROFILE.md](benches/PROFILE.md) (\`benches/profile.sh\`)."
    echo
    echo "## Commands"
    echo
    echo "\`benches/run.sh\` (\`DURATION=$DURATION\`, \`CONNECTIONS=$CONNECTIONS\`) builds with \`cargo build --release\`"
    echo "and \`cargo bench --no-run\`, picks two free loopback ports (here $FCGI_PORT for wsgid, $NGINX_PORT"
    echo "for nginx), then for each layout:"
    echo
    echo '```sh'
    echo "target/release/wsgid fixtures/hello.py --fastcgi 127.0.0.1:$FCGI_PORT --processes P --threads T"
    echo "# warm-up, which also waits for the workers to load the application"
    echo "cargo bench --bench fcgi_load -- --addr 127.0.0.1:$FCGI_PORT --connections 2 --duration $WARMUP --keep-conn"
    echo "nginx -p \$TMP/nginx -e \$TMP/nginx/error.log -c \$TMP/nginx/nginx.conf   # the configuration below"
    echo "wrk -t2 -c32 -d${WARMUP}s http://127.0.0.1:$NGINX_PORT/   # warm-up"
    echo "wrk -t2 -c32 -d${DURATION}s --latency http://127.0.0.1:$NGINX_PORT/"
    echo "# nginx stopped"
    echo "cargo bench --bench fcgi_load -- --addr 127.0.0.1:$FCGI_PORT --connections $CONNECTIONS --duration $DURATION --keep-conn"
    echo '```'
    echo
    echo "wsgid's CPU time is read from \`/proc/PID/stat\` (utime + stime of the master and each"
    echo "worker) just before and after each measured run, and divided by its requests; RSS is"
    echo "\`VmRSS\` of \`/proc/PID/status\` after both runs of a layout."
    echo
    echo "and once \`cargo bench --bench overhead\`."
    echo
    echo "nginx configuration:"
    echo
    echo '```nginx'
    sed "s|$WORK|\$TMP|g" "$WORK/nginx/nginx.conf"
    echo '```'
    echo
    echo "Re-run: \`benches/run.sh\` (\`DURATION=30 benches/run.sh\` for longer runs,"
    echo "\`benches/run.sh --smoke\` for a quick check)."
    if [ -n "$COMPARISON" ]; then
        echo
        printf '%s\n' "$COMPARISON"
    fi
} >"$OUT"

say "wrote $OUT"
if [ "$FAILED" != 0 ]; then
    say "FAILED: some runs had errors or no requests (see above)"
    exit 1
fi
