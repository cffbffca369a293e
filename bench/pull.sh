#!/usr/bin/env bash
# Pull speed: `rocker pull` against `podman pull` of the same multi-layer image (~130 MB
# unpacked, ~115 MB of gzip layers) from a private registry on 127.0.0.1, each from an empty
# store, side by side in one hyperfine run. Run as root.
#   BENCH_RUNS (10), BENCH_WARMUP (1), ROCKER (a built rocker binary)
set -euo pipefail

RUNS=${BENCH_RUNS:-10}
WARMUP=${BENCH_WARMUP:-1}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "pull.sh: $*" >&2; exit 1; }

# Podman's store for this run, under $T; emptied (and its mounts undone) before each pull.
podman_cmd() { PODMAN=(podman --root "$T/podman/root" --runroot "$T/podman/run" --storage-driver overlay --cgroup-manager cgroupfs); }
reset_podman() {
    [ -d "$T/podman" ] || return 0
    "${PODMAN[@]}" system reset -f >/dev/null 2>&1 || true
    { grep " $T/podman" /proc/self/mountinfo || true; } | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
    rm -rf "$T/podman"
}
if [ "${1:-}" = --reset-podman ]; then # hyperfine's prepare step for podman
    T=$2
    podman_cmd
    reset_podman
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "run as root"
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (Debian package $2)"); }
need hyperfine hyperfine
need podman podman
need skopeo skopeo
need umoci umoci
need docker-registry docker-registry
need python3 python3
[ -x /bin/busybox ] || missing+=("/bin/busybox (Debian package busybox-static)")
if ((${#missing[@]})); then
    printf 'missing: %s\n' "${missing[@]}" >&2
    die "install them with bench/setup.sh (apt-get, as root)"
fi

if [ -n "${ROCKER:-}" ]; then
    [ -x "$ROCKER" ] || die "ROCKER=$ROCKER is not an executable file"
else
    echo "building rocker (release: scripts/build-release.sh)..."
    ROCKER=$("$REPO/scripts/build-release.sh" -p rocker)/rocker
fi

T=$(mktemp -d /tmp/rocker-pull-bench.XXXXXX)
REGISTRY_PID=
cleanup() {
    if [ -n "$REGISTRY_PID" ]; then
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
    fi
    reset_podman
    # Never delete through a mount.
    if grep -q " $T" /proc/self/mountinfo; then
        echo "pull.sh: mounts left under $T, not removing it:" >&2
        grep " $T" /proc/self/mountinfo >&2
    else
        rm -rf "$T"
    fi
}
podman_cmd
trap cleanup EXIT

# --- the image: busybox, then four layers of 16 MiB random + 16 MiB base64 text each ---
echo "building the image..."
cd "$T"
umoci init --layout layout >/dev/null
umoci new --image layout:big >/dev/null
# A layer per unpack/change/repack round: repack stores what changed since the unpack.
# (umoci 0.4.7's `insert` writes truncated tars, which rocker and GNU tar rightly refuse.)
layer() {
    rm -rf bundle
    umoci unpack --image layout:big bundle >/dev/null
    "$@"
    umoci repack --image layout:big bundle >/dev/null
}
busybox_layer() {
    mkdir -p bundle/rootfs/bin
    cp /bin/busybox bundle/rootfs/bin/busybox
    ln -s busybox bundle/rootfs/bin/sh
}
data_layer() {
    mkdir -p "bundle/rootfs/data/$1"
    head -c 16M /dev/urandom >"bundle/rootfs/data/$1/random"
    head -c 12M /dev/urandom | base64 >"bundle/rootfs/data/$1/text"
}
layer busybox_layer
for i in 1 2 3 4; do
    layer data_layer "$i"
done
umoci config --image layout:big --config.cmd /bin/sh >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >registry.yml <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $T/registry}}
http: {addr: 127.0.0.1:$port}
EOF
docker-registry serve registry.yml >registry.log 2>&1 &
REGISTRY_PID=$!
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && break
    sleep 0.2
done
IMAGE=127.0.0.1:$port/bench/big:latest
skopeo copy -q --dest-tls-verify=false oci:layout:big "docker://$IMAGE"
skopeo inspect --raw --tls-verify=false "docker://$IMAGE" | python3 -c '
import json, sys
m = json.load(sys.stdin)
sizes = [l["size"] for l in m["layers"]]
print(f"image: {len(sizes)} gzip layers, {sum(sizes) / 1e6:.0f} MB compressed")'

# Each run starts from an empty store: the prepare step removes the last run's.
hyperfine -N --runs "$RUNS" --warmup "$WARMUP" --export-json "$T/pull.json" \
    -n rocker --prepare "rm -rf $T/rocker" "$ROCKER --root $T/rocker pull -q $IMAGE" \
    -n podman --prepare "$REPO/bench/pull.sh --reset-podman $T" \
    "${PODMAN[*]} pull -q --tls-verify=false $IMAGE"

python3 - "$T/pull.json" <<'EOF'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
rk, pm = r["rocker"]["median"], r["podman"]["median"]
print(f"\n  median s   rocker {rk:.3f}   podman {pm:.3f}   rocker/podman {rk / pm:.2f}")
EOF
