#!/usr/bin/env bash
# Builds wsgid (its binary and libwsgid.so) and the named benchmark programs with one cargo
# command, and copies them into DIR, the copies a benchmark run uses: a rebuild during the
# run cannot swap a binary under it.
#
# Usage: benches/build.sh DIR BENCH...
# Environment: BUILD: "release" (default: `cargo bench --no-run`, the bench profile, which
# is the release one) or "test" (`cargo test --no-run`: the debug build that
# `cargo test --all-targets` makes and then finds up to date; for checking that the
# scripts work, its figures mean nothing); CARGO (default cargo).
#
# One cargo command builds all, as a dev target: cargo resolves the dependencies' features
# per command, with the dev-dependencies' (proptest turns on bitflags' "std", which nix is
# then built with) only when a test or benchmark is built. A `cargo build --release`
# beside `cargo bench` builds wsgid against the other nix, and since the two share the
# files target/release/wsgid and libwsgid.so, every switch between them rebuilds wsgid.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

[ $# -ge 1 ] || { echo "build.sh: usage: benches/build.sh DIR BENCH..." >&2; exit 2; }
DEST=$1
shift
CARGO=${CARGO:-cargo}
case "${BUILD:-release}" in
    release) MODE=bench ;;
    test) MODE=test ;;
    *) echo "build.sh: BUILD is ${BUILD}, not release or test" >&2; exit 2 ;;
esac
BENCHES=()
for b in "$@"; do BENCHES+=(--bench "$b"); done

mkdir -p "$DEST"
"$CARGO" "$MODE" --no-run "${BENCHES[@]}" --message-format=json-render-diagnostics \
    >"$DEST/build.json"
python3 - "$DEST" "$@" <<'EOF'
import json, os, shutil, sys
dest, benches = sys.argv[1], set(sys.argv[2:])
want = {"wsgid", "libwsgid.so"} | benches
with open(os.path.join(dest, "build.json")) as f:
    for line in f:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact":
            continue
        target, exe = msg["target"], msg.get("executable")
        name, kinds = target["name"], target["kind"]
        if name in benches and "bench" in kinds and exe:
            found = (name, exe)
        elif name == "wsgid" and "bin" in kinds and exe and not msg["profile"]["test"]:
            found = ("wsgid", exe)
        elif name == "wsgid" and "cdylib" in kinds and not msg["profile"]["test"]:
            so = [p for p in msg["filenames"] if p.endswith(".so")]
            if not so:
                continue
            found = ("libwsgid.so", so[0])
        else:
            continue
        shutil.copy(found[1], os.path.join(dest, found[0]))
        want.discard(found[0])
if want:
    sys.exit(f"build.sh: cargo's output names no {sorted(want)}")
EOF
rm -f "$DEST/build.json"
