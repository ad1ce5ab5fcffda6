#!/usr/bin/env bash
# Scale run: a synthetic crates.io-sized index (default 200,000 crates and
# 2,000,000 versions; real-looking index lines, no .crate files), built
# with `git fast-import`, then timed with peak memory:
#   - `mirror crate init` + `pull` (clone of the whole index),
#   - `list` over the whole history (the range diff from nothing: every
#     version parsed),
#   - a second commit changing 1% of the crates (a new version each, one
#     yank), `pull`, and `list` of that range (the incremental diff),
#   - `download` of the whole history against an upstream that never
#     answers: the peak memory of a first mirror's plan,
#   - `verify` of that range with the new versions' .crate files present
#     (the only real files, made to match their index checksums),
#   - `mark`.
# romt runs the same incremental list when present (bench/.venv/bin/romt
# or $ROMT); the whole-history list is left to mirror (romt needs minutes).
#
#   bench/scale.sh                     CRATES=20000 VERSIONS=10 bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CRATES=${CRATES:-200000}
VERSIONS=${VERSIONS:-10}
ROMT=${ROMT:-$PWD/bench/.venv/bin/romt}
if [ -z "${MIRROR:-}" ]; then
    cargo build --release --quiet
    MIRROR=$PWD/target/release/mirror
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mirror-scale.XXXXXX")
trap 'rm -rf "$work"' EXIT
up=$work/upstream
git init -q --bare "$up"

# One commit of CRATES files with VERSIONS lines each; then one that adds
# a version to every 100th crate and yanks one version of another.
python3 - "$CRATES" "$VERSIONS" "$work" <<'PY' | git --git-dir="$up" fast-import --quiet
import hashlib, sys, os
crates, versions, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = sys.stdout.buffer

def path(name):
    n = name.lower()
    if len(n) <= 2: return f"{len(n)}/{n}"
    if len(n) == 3: return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"

def line(name, v, yanked=False):
    ck = hashlib.sha256(f"{name}-{v}".encode()).hexdigest()
    return ('{"name":"%s","vers":"%s","deps":[{"name":"serde","req":"^1.0",'
            '"features":[],"optional":false,"default_features":true,"target":null,'
            '"kind":"normal"}],"cksum":"%s","features":{},"yanked":%s,"v":2}\n'
            % (name, v, ck, "true" if yanked else "false"))

def blob(data):
    out.write(b"data %d\n" % len(data)); out.write(data); out.write(b"\n")

def commit(msg, files, parent):
    out.write(b"commit refs/heads/master\n")
    out.write(b"committer bench <bench@localhost> 1700000000 +0000\n")
    m = msg.encode(); out.write(b"data %d\n" % len(m)); out.write(m); out.write(b"\n")
    for p, data in files:
        out.write(b"M 100644 inline %s\n" % p.encode()); blob(data)

names = [f"bench-crate-{i:06d}" for i in range(crates)]
first = [(path(n), "".join(line(n, f"1.0.{v}") for v in range(versions)).encode()) for n in names]
first.append(("config.json", b'{"dl":"http://127.0.0.1:1/crates","api":"http://127.0.0.1:1"}\n'))
commit("Initial index", first, False)
changed = []
for i in range(0, crates, 100):
    n = names[i]
    text = "".join(line(n, f"1.0.{v}", yanked=(v == 0 and i % 200 == 0)) for v in range(versions))
    changed.append((path(n), (text + line(n, "2.0.0")).encode()))
commit("Update 1% of the crates", changed, True)
# The .crate files of the second commit's new versions, for verify.
with open(os.path.join(work, "new-crates.txt"), "w") as f:
    for i in range(0, crates, 100):
        f.write(f"{names[i]} 2.0.0\n")
PY

measure() { # label, command...
    local label=$1; shift
    local t0 t1 rss
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/rss" "$@" >"$work/out" 2>"$work/err" || { echo "$label failed:"; tail -5 "$work/err"; exit 1; }
    t1=$(date +%s.%N)
    rss=$(tail -1 "$work/rss")
    printf '%-44s %8.2f s  %7.0f MiB peak\n' "$label" "$(echo "$t1 - $t0" | bc)" "$(echo "$rss / 1024" | bc)"
}

root=$work/root
mkdir -p "$root"
first=$(git --git-dir="$up" rev-parse master^)
second=$(git --git-dir="$up" rev-parse master)
echo "# $CRATES crates x $VERSIONS versions (+$((CRATES / 100)) in the second commit); $(nproc) cores"
measure "mirror crate init" "$MIRROR" --root "$root" -q crate init --index-url "$up"
measure "mirror crate pull (whole index)" "$MIRROR" --root "$root" -q crate pull
lines=$("$MIRROR" --root "$root" -q crate list --start 0 --end "$first" | wc -l)
measure "mirror crate list --start 0 ($lines versions)" "$MIRROR" --root "$root" -q crate list --start 0 --end "$first"
n=$("$MIRROR" --root "$root" -q crate list --start "$first" --end "$second" | wc -l)
measure "mirror crate list (1% changed, $n lines)" "$MIRROR" --root "$root" -q crate list --start "$first" --end "$second"

# A first mirror's plan: `download` of the whole history from an upstream
# that accepts connections and never answers, so that nothing is fetched
# and the plan is all that grows; peak memory after PLAN_WAIT seconds
# (the whole-history diff takes ~10 s at 2M versions).
python3 - "$work/blackhole.port" <<'PY' &
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1024)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
while True:
    held.append(s.accept()[0])
PY
hole=$!
while [ ! -s "$work/blackhole.port" ]; do sleep 0.1; done
plan=$work/plan
mkdir -p "$plan"
"$MIRROR" --root "$plan" -q crate init --index-url "$up"
"$MIRROR" --root "$plan" -q crate pull
"$MIRROR" --root "$plan" -q crate download --start 0 --end "$first" -j 64 --timeout 600 \
    --crates-url "http://127.0.0.1:$(cat "$work/blackhole.port")/{crate}/{crate}-{version}.crate" &
dl=$!
sleep "${PLAN_WAIT:-20}"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$dl/status")
kill "$dl" "$hole"
wait "$dl" "$hole" 2>/dev/null || true
printf '%-44s %8s    %7.0f MiB peak\n' "mirror crate download, first plan (stalled)" "${PLAN_WAIT:-20} s" "$(echo "$hwm / 1024" | bc)"

# The new versions' .crate files, with the checksums the index gives them.
python3 - "$work/new-crates.txt" "$root/crates" <<'PY'
import hashlib, os, sys
for l in open(sys.argv[1]):
    name, v = l.split()
    n = name.lower()
    d = os.path.join(sys.argv[2], n[:2], n[2:4], name)
    os.makedirs(d, exist_ok=True)
    # the index gives cksum = sha256("name-version"): the file holds that
    open(os.path.join(d, f"{name}-{v}.crate"), "wb").write(f"{name}-{v}".encode())
PY
measure "mirror crate verify (1% range)" "$MIRROR" --root "$root" -q crate verify --start "$first" --end "$second"
measure "mirror crate mark" "$MIRROR" --root "$root" -q crate mark --end "$second"

if [ -x "$ROMT" ]; then
    rroot=$work/romt
    mkdir -p "$rroot"
    (cd "$rroot" && "$ROMT" crate -q init --index-url "$up" >/dev/null && "$ROMT" crate -q pull >/dev/null)
    t0=$(date +%s.%N)
    (cd "$rroot" && /usr/bin/time -f "%M" -o "$work/rss" "$ROMT" crate -q list --start "$first" --end "$second" >/dev/null)
    t1=$(date +%s.%N)
    printf '%-44s %8.2f s  %7.0f MiB peak\n' "romt crate list (1% changed)" "$(echo "$t1 - $t0" | bc)" "$(echo "$(tail -1 "$work/rss") / 1024" | bc)"
else
    echo "# romt: not found at $ROMT (python3 -m venv bench/.venv && bench/.venv/bin/pip install romt); skipped"
fi
