#!/usr/bin/env bash
# Container start-up time and peak memory: rocker-runtime against runc and crun, on one
# busybox bundle running /bin/true. Run as root; bench/README.md explains the figures.
#   BENCH_RUNS (50), BENCH_ROUNDS (3), BENCH_WARMUP (5), BENCH_RSS_RUNS (5),
#   ROCKER_RUNTIME (a built binary)
set -euo pipefail

RUNS=${BENCH_RUNS:-50}
ROUNDS=${BENCH_ROUNDS:-3}
WARMUP=${BENCH_WARMUP:-5}
RSS_RUNS=${BENCH_RSS_RUNS:-5}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CG=rocker-bench-$$ # relative cgroupsPath parent: lands below our own cgroup in every hierarchy
ID=bench           # fixed: every measured command deletes its container; state dirs are per runtime
NAMES=(rocker runc crun)
UNIFIED_CONTROLLERS=/sys/fs/cgroup/unified/cgroup.controllers

die() { echo "lifecycle.sh: $*" >&2; exit 1; }
note() { echo "* $*"; }

# --- 1. tools: checked, never installed here (bench/setup.sh does that) ---
[ "$(id -u)" -eq 0 ] || die "run as root: the runtimes create namespaces and cgroups"
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (Debian package $2)"); }
need hyperfine hyperfine
need runc runc
need crun crun
need python3 python3
need unshare util-linux
[ -x /usr/bin/time ] || missing+=("/usr/bin/time, for peak RSS (Debian package time)")
# The rootfs has no libc, so busybox must be the static one.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
    missing+=("a static /bin/busybox for the rootfs (Debian package busybox-static)")
fi
if ((${#missing[@]})); then
    printf 'missing: %s\n' "${missing[@]}" >&2
    die "install them with bench/setup.sh (apt-get, as root)"
fi

# --- 2. rocker-runtime ---
if [ -n "${ROCKER_RUNTIME:-}" ]; then
    [ -x "$ROCKER_RUNTIME" ] || die "ROCKER_RUNTIME=$ROCKER_RUNTIME is not an executable file"
    ROCKER=$ROCKER_RUNTIME
else
    command -v cargo >/dev/null || die "cargo not found: install Rust or set ROCKER_RUNTIME"
    echo "building rocker-runtime (release: scripts/build-release.sh, static-pie)..."
    ROCKER=$("$REPO/scripts/build-release.sh" -p rocker-runtime)/rocker-runtime
fi
declare -A BIN=([rocker]=$ROCKER [runc]=$(command -v runc) [crun]=$(command -v crun))

# --- 3. temp dir, and the cleanup that leaves nothing behind ---
T=$(mktemp -d /tmp/rocker-bench.XXXXXX)
B=$T/bundle
# The runtimes' state (--root) on tmpfs, as their defaults under /run are on most hosts: on
# a disk filesystem each create/delete also pays for journalling its few small files.
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
    STATE=$(mktemp -d /dev/shm/rocker-bench-state.XXXXXX)
else
    STATE=$T/state
fi
# Every runtime call (hyperfine's included) runs through this prefix: a private mount and
# cgroup namespace in which the cgroup filesystems are mounted afresh, so that their root is
# this script's own cgroup in every hierarchy. crun 1.8 takes a relative cgroupsPath from the
# hierarchy's root, not from the caller's cgroup; here both are the same place, below our
# cgroup, for all three runtimes. ns.sh's first argument: a file to bind over cgroup2's
# controller list, or "" (step 4). Nothing is mounted in the host's namespace.
NS=(unshare -m -C --propagation private sh "$T/ns.sh" "")
cat >"$T/ns.sh" <<'EOF'
set -e
bind=$1
shift
mounts=$(awk '$5 ~ "^/sys/fs/cgroup(/|$)" { for (i = 7; $i != "-"; i++); print $5, $(i + 1), $(i + 3) }' /proc/self/mountinfo)
umount -R /sys/fs/cgroup
echo "$mounts" | while read -r dir type opts; do
    mkdir -p "$dir"
    mount -t "$type" -o "$opts" "$type" "$dir"
done
[ -z "$bind" ] || mount --bind "$bind" /sys/fs/cgroup/unified/cgroup.controllers
exec "$@"
EOF

cleanup() {
    local rc=$? name id left
    set +e
    for name in "${NAMES[@]}"; do
        [ -d "$STATE/$name" ] || continue
        for id in $("${BIN[$name]}" --root "$STATE/$name" list -q 2>/dev/null); do
            "${NS[@]}" "${BIN[$name]}" --root "$STATE/$name" delete -f "$id" >/dev/null 2>&1
        done
    done
    # Depth first: rmdir takes its arguments in find's order, children before parents.
    find /sys/fs/cgroup -depth -type d \( -name "$CG" -o -path "*/$CG/*" \) -exec rmdir {} + 2>/dev/null
    left=$(find /sys/fs/cgroup -name "$CG" 2>/dev/null)
    # Our mounts only ever exist in private namespaces; never rm -rf across a mount point.
    if grep -qF " $T" /proc/self/mountinfo; then
        echo "LEFT BEHIND: mounts under $T; not removing it" >&2
        rc=1
    else
        rm -rf "$T"
    fi
    rm -rf "$STATE"
    if [ -n "$left" ]; then
        printf 'LEFT BEHIND: cgroup %s\n' "$left" >&2
        rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ "$T$ROCKER" != *[[:space:]]* ]] || die "paths with spaces would break hyperfine's command lines"

rt() { # rt NAME ARGS...: one runtime with its own state dir
    local name=$1
    shift
    "${NS[@]}" "${BIN[$name]}" --root "$STATE/$name" "$@"
}
hf_cmd() { # hf_cmd NAME ARGS...: the same, as the text of a hyperfine command
    local name=$1
    shift
    echo "${BIN[$name]} --root $STATE/$name $*"
}
cgroup_left() { find /sys/fs/cgroup -path "*/$CG/$ID" 2>/dev/null | head -n1; }

mkdir -p "$B/rootfs/bin" "$STATE/rocker" "$STATE/runc" "$STATE/crun"
cp /bin/busybox "$B/rootfs/bin/busybox"
while read -r applet; do
    [ "$applet" = busybox ] || ln -s busybox "$B/rootfs/bin/$applet"
done < <(/bin/busybox --list)
(cd "$B" && runc spec)
python3 - "$B/config.json" "$CG/$ID" <<'PY'
import json, sys

path, cgroups_path = sys.argv[1:]
with open(path) as f:
    spec = json.load(f)
proc = spec["process"]
proc["terminal"] = False
proc["args"] = ["/bin/true"]
spec["linux"]["cgroupsPath"] = cgroups_path
changed = [f'linux.cgroupsPath = "{cgroups_path}" (relative: below our own cgroup)']
# All three do without the cgroup mount and namespace: early rocker-runtime versions refused
# them, and leaving them out keeps figures comparable across versions.
n = len(spec["mounts"])
spec["mounts"] = [m for m in spec["mounts"] if m.get("type") != "cgroup"]
if len(spec["mounts"]) < n:
    changed.append("removed the cgroup mount (/sys/fs/cgroup): older rocker-runtime refused it")
ns = spec["linux"].get("namespaces", [])
if any(x["type"] == "cgroup" for x in ns):
    spec["linux"]["namespaces"] = [x for x in ns if x["type"] != "cgroup"]
    changed.append("removed the cgroup namespace: older rocker-runtime refused it")
# The kernel raises an ambient capability only if it is also inheritable. runc's spec asks
# for ambient ones without inheritable: runc and crun skip them silently (the container ends
# with no ambient caps), rocker-runtime refuses with EPERM. Dropping them = what runc does.
caps = proc.get("capabilities", {})
inheritable = caps.get("inheritable") or []
amb = caps.get("ambient") or []
kept = [c for c in amb if c in inheritable]
if kept != amb:
    caps["ambient"] = kept
    changed.append("removed process.capabilities.ambient not in inheritable "
                   f"({', '.join(c for c in amb if c not in inheritable)}): runc and crun "
                   "drop them silently, rocker-runtime fails with EPERM")
with open(path, "w") as f:
    json.dump(spec, f, indent=2)
print("bundle: busybox rootfs, config.json from `runc spec` with terminal=false, args=[/bin/true],")
for c in changed:
    print("  " + c)
print("  the same bundle for all three runtimes")
PY

# --- 4. crun 1.8 refuses a hybrid host whose cgroup2 lists a controller (hugetlb here) ---
if ! err=$(rt crun run -b "$B" "$ID" 2>&1); then
    rt crun delete -f "$ID" >/dev/null 2>&1 || true
    [ -e "$UNIFIED_CONTROLLERS" ] || die "crun fails on this host: $err"
    : >"$T/empty"
    NS=(unshare -m -C --propagation private sh "$T/ns.sh" "$T/empty")
    note "crun alone fails here: \"$err\""
    note "so an empty file is bind-mounted over $UNIFIED_CONTROLLERS in the namespace"
    note "  all three runtimes run in (never in the host's)"
fi
note "state dirs (--root) in $STATE ($(stat -f -c %T "$STATE"); the defaults under /run are tmpfs on most hosts)"
note "every runtime call, hyperfine itself included, runs in a private mount + cgroup namespace"
note "  whose cgroup filesystems are rooted at this script's cgroup (crun 1.8 reads a relative"
note "  cgroupsPath from the hierarchy root)"
# Each runtime once through the whole life cycle; its container's cgroups must lie below
# ours in every hierarchy, and be gone after delete (the next runtime reuses the path).
for name in "${NAMES[@]}"; do
    err=$(rt "$name" run -b "$B" "$ID" 2>&1) || die "$name fails on the bundle: $err"
    rt "$name" create -b "$B" "$ID" || die "$name create failed"
    pid=$(rt "$name" state "$ID" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
    outside=$(awk -F: 'NR == FNR { own[$1] = ($3 == "/" ? "" : $3); next }
        index($3 "/", own[$1] "/") != 1' "/proc/$$/cgroup" "/proc/$pid/cgroup")
    rt "$name" start "$ID"
    rt "$name" delete -f "$ID"
    [ -z "$outside" ] || die "$name put its container outside this script's cgroup: $outside"
    [ -z "$(cgroup_left)" ] || die "$name left its container's cgroup behind: $(cgroup_left)"
done

# --- 5. start-up time ---
note "hyperfine runs the commands of one invocation one after the other, not interleaved; medians"
note "  here drift by up to a third between invocations, so each scenario has $ROUNDS rounds with the"
note "  runtimes' order rotated (rocker first, then second, then third...), and each median is over"
note "  all of a runtime's runs; create+start+delete is one 'sh -c' line, so it includes a /bin/sh"
note "  start (the same for all three; measured alone below)"
echo "$(nproc) CPUs, kernel $(uname -r), $ROUNDS rounds x ($RUNS runs + $WARMUP warm-up) per command"
rocker_v=$("$ROCKER" --version | head -n1)
runc_v=$(runc --version | head -n1)
crun_v=$(crun --version | head -n1)
echo "$rocker_v | $runc_v | $crun_v"

declare -A RUN_CMD CSD_CMD
for name in "${NAMES[@]}"; do
    RUN_CMD[$name]=$(hf_cmd "$name" run -b "$B" "$ID")
    CSD_CMD[$name]="sh -c '$(hf_cmd "$name" create -b "$B" "$ID") && $(hf_cmd "$name" start "$ID") && $(hf_cmd "$name" delete -f "$ID")'"
done
hf() { # hf SCENARIO CMD-ARRAY-NAME [HYPERFINE-OPTIONS...]: ROUNDS invocations, order rotated
    local scenario=$1 round i name order
    local -n cmds=$2
    shift 2
    for ((round = 0; round < ROUNDS; round++)); do
        order=()
        for ((i = 0; i < ${#NAMES[@]}; i++)); do
            name=${NAMES[$(((i + round) % ${#NAMES[@]}))]}
            order+=(-n "$name" "${cmds[$name]}")
        done
        echo
        echo "== $scenario, round $((round + 1)) of $ROUNDS"
        "${NS[@]}" hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" \
            --export-json "$T/$scenario.$round.json" "${order[@]}" "$@"
    done
}
hf run RUN_CMD
hf run-idle RUN_CMD --prepare 'sleep 0.1'
hf csd CSD_CMD -n "sh alone" "sh -c :"
hf csd-idle CSD_CMD --prepare 'sleep 0.1'

# --- 6. peak RSS of `run`: the largest process of the runtime's tree, as wait4 reports it ---
for name in "${NAMES[@]}"; do
    max=0
    for ((i = 0; i < RSS_RUNS; i++)); do
        "${NS[@]}" /usr/bin/time -v -o "$T/time.txt" \
            "${BIN[$name]}" --root "$STATE/$name" run -b "$B" "$ID"
        kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$T/time.txt")
        if ((kb > max)); then max=$kb; fi
    done
    echo "$name $max" >>"$T/rss.txt"
done

# --- the table ---
echo
python3 - "$T" "$RSS_RUNS" "$ROUNDS" <<'PY'
import glob, json, statistics, sys

t, rss_runs, rounds = sys.argv[1:]
rows = [("run /bin/true", "run"), ("run, 100 ms idle before each", "run-idle"),
        ("create+start+delete", "csd"), ("create+start+delete, 100 ms idle", "csd-idle")]
head = f"{'median, ms':34}{'rocker':>8}{'runc':>8}{'crun':>8}{'r/crun':>8}{'r/runc':>8}"
print(head)
print("-" * len(head))
sh_alone = None
spread = []
for label, name in rows:
    times, round_ratios = {}, []
    for path in sorted(glob.glob(f"{t}/{name}.*.json")):
        with open(path) as f:
            results = json.load(f)["results"]
        for r in results:
            times.setdefault(r["command"], []).extend(r["times"])
        one = {r["command"]: r["median"] for r in results}
        round_ratios.append(one["rocker"] / one["crun"])
    med = {cmd: statistics.median(ts) * 1e3 for cmd, ts in times.items()}
    sh_alone = med.get("sh alone", sh_alone)
    r, ru, c = med["rocker"], med["runc"], med["crun"]
    print(f"{label:34}{r:8.2f}{ru:8.2f}{c:8.2f}{r / c:8.2f}{r / ru:8.2f}")
    spread.append(f"{label}: {min(round_ratios):.2f}-{max(round_ratios):.2f}")
rss = dict(line.split() for line in open(f"{t}/rss.txt"))
r, ru, c = (int(rss[n]) / 1024 for n in ("rocker", "runc", "crun"))
print(f"{'peak RSS of run, MiB (max of ' + rss_runs + ')':34}{r:8.1f}{ru:8.1f}{c:8.1f}{r / c:8.2f}{r / ru:8.2f}")
print(f"\n'sh -c :' alone (inside every create+start+delete figure): {sh_alone:.2f} ms")
print(f"rocker/crun within each of the {rounds} rounds: " + "; ".join(spread))
PY
