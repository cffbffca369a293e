#!/usr/bin/env bash
# Prepares a Debian 12 host (as root) for tests/vm/run.sh:
#   - apt-installs busybox-static, cpio and the shared libraries QEMU needs;
#   - unpacks Debian's QEMU 7.2 and cloud kernel into a cache dir with
#     `dpkg -x` instead of installing them.
# Why unpack QEMU: the host may carry qemu-utils 10.x from bookworm-backports,
# which Breaks qemu-system-common (<< 8.0), so installing bookworm's
# qemu-system-x86 package would remove it. Why unpack the kernel: installing
# it as a package would pull in initramfs-tools, systemd hooks, etc.
#
# Idempotent: once the cache is complete it only checks, offline.
# Cache: $ROCKER_VM_CACHE, default /var/cache/rocker-vm (outside the repo so a
# fresh clone on the same machine reuses it). --refresh re-downloads.
set -euo pipefail

CACHE=${ROCKER_VM_CACHE:-/var/cache/rocker-vm}
QEMU_PKGS=(qemu-system-x86 qemu-system-common qemu-system-data seabios)
HOST_PKGS=(busybox-static cpio)
export DEBIAN_FRONTEND=noninteractive

log() { printf 'setup: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

refresh=0
case "${1:-}" in
  --refresh) refresh=1 ;;
  "") ;;
  *) die "usage: $0 [--refresh]" ;;
esac

[ "$(id -u)" = 0 ] || die "must run as root"

installed() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || return 1
  done
}

# Fast path: everything present from an earlier run (no network needed).
if [ "$refresh" = 0 ] && [ -s "$CACHE/manifest" ]; then
  # shellcheck disable=SC2046  # word-splitting the package list is intended
  if installed "${HOST_PKGS[@]}" $(sed -n 's/^libdeps=//p' "$CACHE/manifest"); then
    log "up to date: $CACHE"
    sed 's/^/  /' "$CACHE/manifest" >&2
    exit 0
  fi
fi

apt-get update -qq

# Installs packages, but refuses if apt would remove anything (qemu-utils!).
safe_install() {
  local sim
  sim=$(apt-get install -s --no-install-recommends "$@")
  if grep -q '^Remv' <<<"$sim"; then
    grep '^Remv' <<<"$sim" >&2
    die "installing $* would remove packages; refusing"
  fi
  apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# Library dependencies of the qemu-system-x86 binary: everything it Depends on
# except the QEMU packages we unpack ourselves (and ipxe: we use -nic none).
mapfile -t libdeps < <(
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances qemu-system-x86 |
    awk '$1 ~ /Depends:$/ && $2 !~ /^</ {print $2}' |
    grep -Ev '^(qemu-|seabios$|ipxe-qemu$)' | sort -u
)
[ "${#libdeps[@]}" -gt 0 ] || die "could not resolve qemu-system-x86 dependencies"
safe_install "${HOST_PKGS[@]}" "${libdeps[@]}"

kpkg=$(apt-cache depends linux-image-cloud-amd64 |
  awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ {print $2; exit}')
[ -n "$kpkg" ] || die "could not resolve linux-image-cloud-amd64's kernel package"

mkdir -p "$CACHE"
dl=$(mktemp -d "$CACHE/.download.XXXXXX")
trap 'rm -rf "$dl"' EXIT

# Downloads and unpacks packages into $CACHE/$1, replacing it atomically.
unpack() {
  local dest=$1 deb
  shift
  rm -rf "${dl:?}"/*.deb "$dl/tree"
  # Sandbox user root: _apt cannot write into our root-owned temp dir.
  (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null)
  mkdir "$dl/tree"
  for deb in "$dl"/*.deb; do
    # shellcheck disable=SC2016  # dpkg-deb expands these, not the shell
    dpkg-deb -W --showformat='${Package}=${Version}\n' "$deb" >>"$dl/versions"
    dpkg -x "$deb" "$dl/tree"
  done
  rm -rf "${CACHE:?}/$dest"
  mv "$dl/tree" "$CACHE/$dest"
}

log "unpacking ${QEMU_PKGS[*]} into $CACHE/qemu"
unpack qemu "${QEMU_PKGS[@]}"
log "unpacking $kpkg into $CACHE/kernel"
unpack kernel "$kpkg"
# The package leaves modules.dep to its postinst; run.sh --module needs it.
kver=${kpkg#linux-image-}
busybox depmod -b "$CACHE/kernel" "$kver"

# Sanity: the unpacked QEMU must start with the installed libraries.
qemu="$CACHE/qemu/usr/bin/qemu-system-x86_64"
QEMU_MODULE_DIR="$CACHE/qemu/usr/lib/x86_64-linux-gnu/qemu" "$qemu" --version >/dev/null ||
  die "unpacked qemu does not run"
if ldd "$qemu" "$CACHE/qemu/usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so" | grep 'not found'; then
  die "unpacked qemu misses libraries"
fi
ls "$CACHE"/kernel/boot/vmlinuz-* >/dev/null || die "no vmlinuz in $kpkg"

{
  sed 's/^/package=/' "$dl/versions"
  echo "libdeps=${libdeps[*]}"
} >"$CACHE/manifest"
log "done: $CACHE"
sed 's/^/  /' "$CACHE/manifest" >&2
