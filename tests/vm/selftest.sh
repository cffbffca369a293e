#!/usr/bin/env bash
# Boots the cgroup v2 VM a few times and checks what rocker's tests rely on:
# controllers, memory/pids/cpu limits, pivot_root, exit codes, copied
# binaries, environment passing, cleanup. Exits 0 only if every check passes.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
run=$here/run.sh
passed=0
failed=0

ok() { echo "ok   - $*"; passed=$((passed + 1)); }
not_ok() { echo "FAIL - $*"; failed=$((failed + 1)); }

# Runs inside the VM (busybox applets on PATH). Prints "ok"/"FAIL" lines
# itself and exits with the number of failed checks.
guest=$(
  cat <<'EOF'
fails=0
check() { if eval "$2"; then echo "ok   - vm: $1"; else echo "FAIL - vm: $1"; fails=$((fails + 1)); fi; }
cg=/sys/fs/cgroup
ctl=" $(cat $cg/cgroup.controllers) "
for c in memory cpu pids io cpuset; do
  check "controller $c available" 'case "$ctl" in *" $c "*) true ;; *) false ;; esac'
done
check "only cgroup v2 is mounted" '[ "$(grep -c cgroup /proc/mounts)" = 1 ] && grep -q "^cgroup2 /sys/fs/cgroup " /proc/mounts'
check "/proc/self/cgroup is 0::/" '[ "$(cat /proc/self/cgroup)" = "0::/" ]'
check "/ is a tmpfs" '[ "$(awk "\$5 == \"/\" {print \$9}" /proc/self/mountinfo)" = tmpfs ]'

echo "+memory +pids +cpu" >$cg/cgroup.subtree_control
mkdir $cg/t1
echo 33554432 >$cg/t1/memory.max
echo 10 >$cg/t1/pids.max
echo "50000 100000" >$cg/t1/cpu.max
check "limits written" '[ "$(cat $cg/t1/memory.max)" = 33554432 ] && [ "$(cat $cg/t1/pids.max)" = 10 ] && [ "$(cat $cg/t1/cpu.max)" = "50000 100000" ]'

# 100 MiB held in a shell variable must not fit in 32 MiB.
sh -c 'echo $$ >/sys/fs/cgroup/t1/cgroup.procs; x=$(head -c 104857600 /dev/zero | tr "\0" a); echo "alloc survived: ${#x}"'
rc=$?
oom=$(awk '$1 == "oom_kill" {print $2}' $cg/t1/memory.events)
check "100 MiB allocation OOM-killed (status $rc, oom_kill $oom)" '[ "$rc" != 0 ] && [ "${oom:-0}" -gt 0 ]'

# 30 background sleeps must hit pids.max=10 before the loop ends.
sh -c 'echo $$ >/sys/fs/cgroup/t1/cgroup.procs; i=0; while [ $i -lt 30 ]; do sleep 60 & i=$((i + 1)); done; echo fork-loop-completed' >/tmp/fork.out 2>&1
pmax=$(awk '$1 == "max" {print $2}' $cg/t1/pids.events)
check "fork loop stopped by pids.max (pids.events max $pmax)" '[ "${pmax:-0}" -gt 0 ] && ! grep -q fork-loop-completed /tmp/fork.out'
echo 1 >$cg/t1/cgroup.kill
sleep 1

# A busy loop at a 50% quota must get throttled.
sh -c 'echo $$ >/sys/fs/cgroup/t1/cgroup.procs; exec timeout 2 sh -c "while :; do :; done"'
thr=$(awk '$1 == "nr_throttled" {print $2}' $cg/t1/cpu.stat)
check "busy loop throttled by cpu.max (nr_throttled $thr)" '[ "${thr:-0}" -gt 0 ]'
check "cgroup removable" 'rmdir $cg/t1'

check "mount --make-rprivate / allowed" 'mount --make-rprivate /'
check "pivot_root in a mount namespace" '[ "$(unshare -m sh -c "mkdir -p /tmp/r/old && mount --bind /tmp/r /tmp/r && cd /tmp/r && pivot_root . old && echo pivot-ok")" = pivot-ok ]'
exit $fails
EOF
)

echo "# boot + cgroup v2 checks"
out=$("$run" -- sh -c "$guest") && rc=0 || rc=$?
printf '%s\n' "$out"
passed=$((passed + $(grep -c '^ok ' <<<"$out" || true)))
failed=$((failed + $(grep -c '^FAIL ' <<<"$out" || true)))
[ "$rc" = 0 ] || not_ok "guest checks exited $rc"

echo "# exit status"
for code in 0 7 255; do
  rc=0
  "$run" -- /bin/sh -c "exit $code" || rc=$?
  if [ "$rc" = "$code" ]; then ok "exit $code propagated"; else not_ok "exit $code gave $rc"; fi
done

echo "# dynamically linked host binaries, arguments, environment, cwd"
export ROCKER_VM_SELFTEST_VAR="two words 'quoted' \$x"
# shellcheck disable=SC2016  # expanded in the VM
out=$(cd /usr/share && ROCKER_VM_ENV="ROCKER_VM_SELFTEST_VAR UNSET_VAR_X" \
  "$run" --file /usr/bin/stat -- /usr/bin/env sh -c \
  '/usr/bin/stat -c %F /usr/bin/stat; printf "[%s]\n" "$1" "$ROCKER_VM_SELFTEST_VAR" "${UNSET_VAR_X-unset}"; pwd' \
  arg0 "a b'c")
expected="regular file
[a b'c]
[two words 'quoted' \$x]
[unset]
/usr/share"
if [ "$out" = "$expected" ]; then ok "stat/env run, args/env/cwd passed"; else
  not_ok "stat/env run: got:"
  printf '%s\n' "$out" | sed 's/^/#   /'
fi

echo "# failures are reported as 125"
before=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'rocker-vm.*' | wc -l)
rc=0
ROCKER_VM_TIMEOUT=15 "$run" -- sleep 600 2>/dev/null || rc=$?
if [ "$rc" = 125 ]; then ok "timeout gives 125"; else not_ok "timeout gave $rc"; fi
rc=0
"$run" -- /nonexistent/program 2>/dev/null || rc=$?
if [ "$rc" = 125 ]; then ok "missing PROGRAM gives 125"; else not_ok "missing PROGRAM gave $rc"; fi
after=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'rocker-vm.*' | wc -l)
if [ "$before" = "$after" ]; then ok "no temp dirs left"; else not_ok "temp dirs left in ${TMPDIR:-/tmp}"; fi

echo "selftest: $passed passed, $failed failed"
[ "$failed" = 0 ]
