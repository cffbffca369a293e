#!/usr/bin/env bash
# Runs PROGRAM inside a throwaway QEMU (TCG) VM whose only cgroup hierarchy is
# cgroup v2, and exits with PROGRAM's exit code (125: the VM itself failed).
# See tests/vm/README.md; tests/vm/setup.sh must have run once.
set -euo pipefail

usage() {
  cat >&2 <<'EOF'
usage: tests/vm/run.sh [--mem SIZE] [--smp N] [--file PATH]... [--module NAME]... -- PROGRAM [ARGS...]
  --mem SIZE     guest memory (default 1G)
  --smp N        guest CPUs (default 2)
  --file PATH    copy PATH (file or directory) into the VM at the same absolute
                 path, with the shared libraries its ELF files need
  --module NAME  load this kernel module (and its dependencies) at boot
env: ROCKER_VM_ENV      names of host variables to pass to PROGRAM
     ROCKER_VM_TIMEOUT  seconds before the VM is killed (default 600)
     ROCKER_VM_MODULES  more module names, space-separated
     ROCKER_VM_CACHE    setup.sh's cache dir (default /var/cache/rocker-vm)
     ROCKER_VM_DEBUG=1  show the raw console on stderr, without `quiet`
EOF
  exit "${1:-125}"
}
fail() {
  printf 'run.sh: %s\n' "$*" >&2
  exit 125
}

mem=1G
smp=2
files=()
read -r -a modules <<<"${ROCKER_VM_MODULES:-}"
while [ $# -gt 0 ]; do
  case $1 in
    --mem) [ $# -ge 2 ] || usage; mem=$2; shift 2 ;;
    --smp) [ $# -ge 2 ] || usage; smp=$2; shift 2 ;;
    --file) [ $# -ge 2 ] || usage; files+=("$2"); shift 2 ;;
    --module) [ $# -ge 2 ] || usage; modules+=("$2"); shift 2 ;;
    -h | --help) usage 0 ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[ $# -ge 1 ] || usage

timeout_s=${ROCKER_VM_TIMEOUT:-600}
debug=${ROCKER_VM_DEBUG:-0}
cache=${ROCKER_VM_CACHE:-/var/cache/rocker-vm}
qemu_dir=$cache/qemu
qemu=$qemu_dir/usr/bin/qemu-system-x86_64
kernel=$(find "$cache/kernel/boot" -maxdepth 1 -name 'vmlinuz-*' 2>/dev/null | sort | tail -n1)
if ! [ -x "$qemu" ] || [ -z "$kernel" ]; then
  fail "no VM image in $cache: run tests/vm/setup.sh first"
fi
kver=${kernel##*/vmlinuz-}
kmods=$cache/kernel/lib/modules/$kver
busybox=$(command -v busybox) || fail "busybox not found: run tests/vm/setup.sh"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rocker-vm.XXXXXX")
building=1
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  local rc=$? pid
  # QEMU removes its pidfile when it exits: one left over means it still
  # runs (we were interrupted) or was SIGKILLed, so check it is ours.
  if [ -s "$tmp/qemu.pid" ]; then
    pid=$(cat "$tmp/qemu.pid")
    if grep -qF "$tmp" "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  fi
  if [ -n "${vm_job:-}" ]; then wait "$vm_job" 2>/dev/null || true; fi
  rm -rf "$tmp"
  # Any failure while preparing the VM is the harness's, not PROGRAM's.
  if [ "$building" = 1 ] && [ "$rc" != 0 ]; then exit 125; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
root=$tmp/root
mkdir -p "$root"/{dev,proc,sys,tmp,run,root,etc/rocker-vm,newroot,usr/bin,usr/sbin}

# Mirror the host's merged-/usr symlinks (/bin -> usr/bin, ...) so that paths
# reported by ldd exist under the same name in the VM. Targets are made
# relative: an absolute one would point at the host while we build.
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then
    target=$(readlink "/$d" | sed 's|^/||')
    mkdir -p "$root/$target"
    ln -s "$target" "$root/$d"
  elif [ -d "/$d" ]; then
    mkdir -p "$root/$d"
  fi
done

abspath() { realpath -s -m -- "$1"; }
# -L first: -e would follow an applet's absolute symlink on the host.
in_vm() { [ -L "$root$1" ] || [ -e "$root$1" ]; }

# Copies one host file to the same path in the VM, replacing what is there
# (e.g. a busybox applet symlink, which must not be followed to the host).
copy_one() {
  local src=$1 dst=$root$1
  [ -f "$dst" ] && ! [ -L "$dst" ] && return 0
  mkdir -p "$(dirname "$dst")"
  rm -f "$dst"
  cp -L --preserve=mode,timestamps "$src" "$dst"
}

# Copies the shared libraries (and loader) of an ELF file, or the interpreter
# of a script unless the VM already has one at that path (busybox sh).
copy_deps() {
  local f=$1 lib interp
  if [ "$(head -c2 "$f")" = '#!' ]; then
    read -r interp _ < <(head -n1 "$f" | cut -c3-) || true
    if [ -n "${interp:-}" ] && [ -f "$interp" ] && ! in_vm "$interp"; then
      copy_one "$interp"
      copy_deps "$interp"
    fi
    return 0
  fi
  while read -r lib; do
    copy_one "$lib"
  done < <(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
}

add_path() {
  local p f
  p=$(abspath "$1")
  if [ -d "$p" ]; then
    mkdir -p "$root$p"
    cp -a "$p/." "$root$p/"
    while IFS= read -r -d '' f; do copy_deps "$f"; done < <(find "$p" -type f -perm -u+x -print0)
  elif [ -f "$p" ]; then
    rm -f "$root$p"
    copy_one "$p"
    copy_deps "$p"
  else
    fail "no such file: $1"
  fi
}

# busybox and its applets (absolute symlinks are fine: only the VM follows them).
cp -L "$busybox" "$root/bin/busybox"
copy_deps "$busybox"
while read -r applet; do
  case $applet in linuxrc | */busybox) continue ;; esac
  mkdir -p "$(dirname "$root/$applet")"
  in_vm "/$applet" || ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)

for f in ${files[@]+"${files[@]}"}; do add_path "$f"; done

# PROGRAM: a path is copied; a bare name is a busybox applet or looked up in
# the host's PATH.
prog=$1
shift
if [[ $prog == */* ]]; then
  prog=$(abspath "$prog")
  add_path "$prog"
elif ! grep -qxF -- "$prog" <<<"$("$busybox" --list)"; then
  p=$(command -v -- "$prog" || true)
  [[ $p == /* ]] || fail "PROGRAM not found: $prog"
  add_path "$p"
  prog=$p
fi

# Kernel modules: the .ko files with their dependencies, found in modules.dep,
# plus the index files busybox modprobe reads.
if [ "${#modules[@]}" -gt 0 ]; then
  kdst=$root/lib/modules/$kver
  mkdir -p "$kdst"
  cp "$kmods"/modules.{dep,alias,builtin,order} "$kdst/"
  for m in "${modules[@]}"; do
    name=${m//-/_}
    line=$(awk -v n="$name" -F: '{b=$1; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b); gsub(/-/, "_", b)} b == n {print; exit}' "$kmods/modules.dep")
    if [ -z "$line" ]; then
      grep -q "/${name//_/[-_]}\.ko" "$kmods/modules.builtin" || fail "unknown kernel module: $m"
      continue
    fi
    for ko in ${line/:/}; do
      mkdir -p "$(dirname "$kdst/$ko")"
      cp "$kmods/$ko" "$kdst/$ko"
    done
  done
fi

squote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
nonce=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
{
  printf 'VM_NONCE=%s\n' "$nonce"
  printf 'VM_CWD=%s\n' "$(squote "$PWD")"
  printf 'VM_MODULES=%s\n' "$(squote "${modules[*]:-}")"
  printf 'VM_DEBUG=%s\n' "$(squote "$debug")"
} >"$root/etc/rocker-vm/conf"
{
  echo 'export TERM=dumb'
  for name in ${ROCKER_VM_ENV:-}; do
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || fail "bad name in ROCKER_VM_ENV: $name"
    if [ -n "${!name+set}" ]; then printf 'export %s=%s\n' "$name" "$(squote "${!name}")"; fi
  done
} >"$root/etc/rocker-vm/env"
{
  printf 'set --'
  for a in "$prog" "$@"; do printf ' %s' "$(squote "$a")"; done
  echo
} >"$root/etc/rocker-vm/cmd"

in_vm /etc/passwd || echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
in_vm /etc/group || echo 'root:x:0:' >"$root/etc/group"
in_vm /etc/hosts || printf '127.0.0.1\tlocalhost rocker-vm\n::1\tlocalhost\n' >"$root/etc/hosts"

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
# PID 1. Stage 1 runs on the kernel's rootfs, which pivot_root(2) cannot
# leave, so it copies itself into a tmpfs and switch_roots there (stage 2).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
if [ "$1" != stage2 ]; then
  mount -t tmpfs -o mode=0755 tmpfs /newroot || exit 1
  for e in /* /.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    [ "$e" = /newroot ] || cp -a "$e" /newroot/ || exit 1
  done
  exec /bin/busybox env -i /bin/busybox switch_root /newroot /init stage2
fi

export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
exec </dev/null >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec,ptmxmode=0666,mode=0620 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm
# Fresh tmpfs mounts for /tmp and /run, keeping what --file put there.
for d in /tmp /run; do
  mkdir /.mnt && mount -t tmpfs -o nosuid,nodev tmpfs /.mnt &&
    cp -a "$d/." /.mnt/ && rm -rf "$d" && mkdir "$d" && mount --move /.mnt "$d" && rmdir /.mnt
done
chmod 1777 /tmp
chmod 0755 /run
# Like systemd: cgroup2 only, with nsdelegate. Controllers are left to PROGRAM.
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate cgroup2 /sys/fs/cgroup

. /etc/rocker-vm/conf
for m in $VM_MODULES; do modprobe "$m" || echo "init: modprobe $m failed"; done
ip link set lo up
hostname rocker-vm
# Keep kernel messages (e.g. the OOM killer's) out of PROGRAM's output.
[ "$VM_DEBUG" = 1 ] || dmesg -n 1

. /etc/rocker-vm/env
. /etc/rocker-vm/cmd
mkdir -p "$VM_CWD" && cd "$VM_CWD"
printf '\nROCKER-VM-START %s\n' "$VM_NONCE"
"$@"
rc=$?
printf 'ROCKER-VM-EXIT=%s %s\n' "$rc" "$VM_NONCE"
sync
poweroff -f
EOF
chmod 0755 "$root/init"

(cd "$root" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) >"$tmp/initrd.cpio" ||
  fail "cannot build the initramfs"

cmdline="console=ttyS0 cgroup_no_v1=all panic=-1 rdinit=/init mitigations=off"
[ "$debug" = 1 ] || cmdline+=" quiet"
# shellcheck disable=SC2054  # commas belong to QEMU's option syntax
qemu_args=(
  -nodefaults -no-user-config -display none -monitor none
  -serial stdio -nic none -no-reboot
  -accel tcg,thread=multi -cpu max -smp "$smp" -m "$mem"
  -L "$qemu_dir/usr/share/seabios" -L "$qemu_dir/usr/share/qemu"
  -kernel "$kernel" -initrd "$tmp/initrd.cpio" -append "$cmdline"
  -pidfile "$tmp/qemu.pid"
)

# Prints PROGRAM's output: what lies between the start and exit markers, with
# the serial console's carriage returns removed; the exit code goes to a file.
filter() {
  local state=boot line re="^(.*)ROCKER-VM-EXIT=([0-9]+) ${nonce}\$"
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line//$'\r'/}
    if [ "$state" = run ]; then
      if [[ $line =~ $re ]]; then
        [ -z "${BASH_REMATCH[1]}" ] || printf '%s\n' "${BASH_REMATCH[1]}"
        echo "${BASH_REMATCH[2]}" >"$tmp/rc"
        state=finished
      else
        printf '%s\n' "$line"
      fi
    else
      # Boot and shutdown noise: shown only when debugging.
      [ "$debug" != 1 ] || printf '%s\n' "$line" >&2
      [ "$state" = finished ] || [[ $line != *"ROCKER-VM-START $nonce"* ]] || state=run
    fi
  done
}

building=0
# In the background, because bash runs INT/TERM traps only once a foreground
# job has ended; `wait` returns as soon as one arrives.
{
  rc=0
  QEMU_MODULE_DIR=$qemu_dir/usr/lib/x86_64-linux-gnu/qemu \
    timeout -k 10 "$timeout_s" "$qemu" "${qemu_args[@]}" </dev/null 2>"$tmp/qemu.err" || rc=$?
  echo "$rc" >"$tmp/qemu.rc"
} | tee "$tmp/console.log" | filter &
vm_job=$!
wait "$vm_job" || true
qemu_rc=$(cat "$tmp/qemu.rc" 2>/dev/null || echo unknown)

if [ -s "$tmp/rc" ]; then
  exit "$(cat "$tmp/rc")"
fi
{
  if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    echo "run.sh: VM timed out after ${timeout_s}s (ROCKER_VM_TIMEOUT)"
  elif grep -q "ROCKER-VM-START $nonce" "$tmp/console.log"; then
    echo "run.sh: VM stopped before PROGRAM finished (qemu status $qemu_rc)"
  else
    echo "run.sh: VM failed to boot (qemu status $qemu_rc)"
  fi
  echo "--- qemu stderr:"
  cat "$tmp/qemu.err"
  echo "--- last console lines:"
  tail -n 30 "$tmp/console.log" | tr -d '\r'
  echo "--- (ROCKER_VM_DEBUG=1 shows the whole console, without 'quiet')"
} >&2
exit 125
