#!/usr/bin/env bash
# Compares wsgid with uWSGI, flup, gunicorn and Granian behind the same nginx, and writes
# benches/COMPARISON.md, benches/comparison.png and the "Comparison with peer servers"
# section at the end of BENCHMARKS.md (benches/compare.py does the work; see there).
#
# Usage: benches/compare.sh [--smoke]
#   --smoke   1-second runs, one repetition, hello (over TCP and over Unix sockets) +
#             100 MiB download + Django at 1 x 1,
#             16 MiB up and down and 300 idle connections: checks that every server
#             starts and answers (non-zero exit if one does not, or if hello had
#             errors); the report goes to benches/results/COMPARISON-smoke.md and
#             BENCHMARKS.md is left alone
# Environment: REPS (repetitions, default 3), DURATION (seconds per measured run, 4),
# WARMUP (seconds, 1), SERVERS (default "wsgid uwsgi flup gunicorn granian"), IDLE_CONNS
# (10000), IDLE_LAYOUT (2x1), LARGE_MIB (size of the one-request upload and download,
# 1024; 16 with --smoke), NGINX (/usr/sbin/nginx), WRK (wrk), CARGO (cargo),
# PYTHON (the interpreter the venv is made from, /usr/bin/python3), BUILD (release;
# "test" runs the debug build `cargo test` makes: see benches/build.sh).
# Needs: a Rust toolchain, Debian's python3 with python3-dev and python3-venv (uWSGI
# compiles against it), gcc, nginx-light and wrk:
#   apt-get install nginx-light wrk python3-dev python3-venv gcc
# The peers are pip-installed, pinned by benches/requirements-peers.txt, into
# benches/.venv-peers, made once and remade when that file or the interpreter changes.
# Each peer is first started once with the hello application: one that does not answer
# is reported and left out of the run (which then exits non-zero).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

case "${1:-}" in
    -h | --help)
        sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
esac

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

CARGO=${CARGO:-cargo}
PYTHON=${PYTHON:-/usr/bin/python3}
VENV=benches/.venv-peers
REQS=benches/requirements-peers.txt
for tool in "$CARGO" "$PYTHON" "${NGINX:-/usr/sbin/nginx}" "${WRK:-wrk}"; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install nginx-light wrk python3-dev python3-venv)"
done

# ---------------------------------------------------------------- the peers' venv
# Remade when the pins or the interpreter change. --no-cache-dir: uWSGI links the libpython
# of the interpreter that builds it, and pip would reuse a wheel it cached from a build by
# another Python of the same version (a uWSGI that cannot load the application here).
STAMP=$VENV/.requirements
WANT="$(sha256sum "$REQS" | cut -d' ' -f1) $("$PYTHON" -c 'import sys; print(sys.executable, sys.version)')"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    say "creating $VENV (uWSGI compiles from source: about a minute)"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    if ! "$VENV/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check \
        --no-input -r "$REQS" >&2; then
        rm -rf "$VENV"
        die "could not install the peers of $REQS (pip's output above)"
    fi
    printf '%s\n' "$WANT" >"$STAMP"
fi

# ---------------------------------------------------------------- wsgid, fcgi_load, floor
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wsgid-compare-bin.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
say "building (${BUILD:-release})"
benches/build.sh "$WORK" fcgi_load floor

# 10,000 idle connections need more descriptors than the usual 1024 (client and servers).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
say "open-file limit $(ulimit -n)"

"$VENV/bin/python" benches/compare.py --wsgid "$WORK/wsgid" --fcgi-load "$WORK/fcgi_load" \
    --floor "$WORK/floor" "$@"
