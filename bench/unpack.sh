#!/usr/bin/env bash
# Unpacking many small files: `mirror rustup unpack` against `tar xzf` of
# the same archive, side by side.
#
# The archive is a rustup bundle as `mirror rustup pack` makes it
# (MIRROR-BUNDLE.json first, listing every member with its size and
# SHA-256; then the members): FILES files in all, half of them a small
# `rustup-init`, half its `.sha256` sidecar, one version directory per
# pair (rustup/archive/1.X.Y/x86_64-unknown-linux-gnu/). rustup's unpack
# is the plain path every ecosystem shares (stage, check, publish) plus
# rustup's own check of each file against its sidecar; the `verify` and
# `fixup` the command runs after it are timed too.
#
# Each tool runs RUNS times into a fresh tree; the median is printed, and
# the ratio mirror / tar. Trees and archive go under DIR (default
# /dev/shm, as for the other benchmarks: the disk's speed is not what is
# measured; DIR=/var/tmp measures it too, with mirror's syncfs).
#
#   bench/unpack.sh                 FILES=20000 RUNS=3 DIR=/var/tmp bench/unpack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-200000}
RUNS=${RUNS:-5}
DIR=${DIR:-/dev/shm}
if [ -z "${MIRROR:-}" ]; then
    cargo build --release --quiet
    MIRROR=$PWD/target/release/mirror
fi

work=$(mktemp -d "$DIR/mirror-unpack.XXXXXX")
trap 'rm -rf "$work"' EXIT
archive=$work/bundle.tar.gz

python3 - "$FILES" "$archive" <<'PY'
import gzip, hashlib, io, json, sys, tarfile
files, out = int(sys.argv[1]), sys.argv[2]
members = []
for i in range(files // 2):
    d = f"rustup/archive/1.{i // 1000}.{i % 1000}/x86_64-unknown-linux-gnu"
    init = f"#!{i}\n".encode()
    side = f"{hashlib.sha256(init).hexdigest()}  rustup-init\n".encode()
    members.append((f"{d}/rustup-init", init))
    members.append((f"{d}/rustup-init.sha256", side))
manifest = {
    "format": 1, "ecosystem": "rustup", "tool": "bench/unpack.sh",
    "created": "2026-01-01T00:00:00Z",
    "members": [{"path": p, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                for p, b in members],
}
def add(t, name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000
    t.addfile(info, io.BytesIO(data))
with gzip.open(out, "wb", compresslevel=6) as gz:
    with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as t:
        add(t, "MIRROR-BUNDLE.json", json.dumps(manifest, indent=1).encode())
        for p, b in members:
            add(t, p, b)
PY

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

tar_times=() mirror_times=()
for run in $(seq "$RUNS"); do
    dest=$work/tar-$run
    mkdir "$dest"
    t0=$(now)
    tar xzf "$archive" -C "$dest"
    t1=$(now)
    tar_times+=("$(echo "$t1 - $t0" | bc)")
    rm -rf "$dest"

    root=$work/mirror-$run
    mkdir "$root"
    t0=$(now)
    "$MIRROR" --root "$root" -q rustup unpack --archive "$archive"
    t1=$(now)
    mirror_times+=("$(echo "$t1 - $t0" | bc)")
    rm -rf "$root"
done

tar_med=$(printf '%s\n' "${tar_times[@]}" | median)
mirror_med=$(printf '%s\n' "${mirror_times[@]}" | median)
size=$(stat -c %s "$archive")
echo "unpack bench: $FILES files, archive $size bytes, under $DIR ($(stat -f -c %T "$DIR")), median of $RUNS"
echo "  runs tar xzf:             ${tar_times[*]}"
echo "  runs mirror rustup unpack: ${mirror_times[*]}"
printf '%-24s %8.2f s\n' "tar xzf" "$tar_med"
printf '%-24s %8.2f s\n' "mirror rustup unpack" "$mirror_med"
printf 'mirror / tar: %.2fx\n' "$(echo "$mirror_med / $tar_med" | bc -l)"
