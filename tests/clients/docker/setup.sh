#!/bin/sh
# Gets what crates/runtime/tests/client_docker.rs needs (see tests/clients/docker/docker.md).
# Idempotent; run as root on Debian 12 (bookworm).
#
# Debian's docker.io (20.10) is NOT installed as a package: `apt-get install docker.io`
# would also start the system's docker.service (bridge docker0, iptables rules, /var/lib/docker)
# and pull apparmor, needrestart, cgroupfs-mount. Instead the .deb is downloaded and
# unpacked into a cache dir ($ROCKER_DOCKER_DIR, default /var/cache/rocker-docker): the
# test runs its own private dockerd from there (usr/sbin/dockerd, usr/bin/docker,
# usr/sbin/docker-proxy...).
#
# Installed as packages (they start no service of docker's):
#   containerd      containerd 1.6 and its runc v2 shim (the test starts a private containerd
#                   and gives it to dockerd); pulls runc. Also installed by tests/clients/setup.sh.
#   tini            docker-init = tini-static (docker.io depends on it; used by `--init`)
#   iptables        a dependency of docker.io (the test runs dockerd with --iptables=false)
#   libdevmapper1.02.1, libsystemd0: dockerd's shared libraries
#   busybox-static  the static /bin/busybox the test image is built from
#   tar, coreutils  the image archive (tar) and digests (sha256sum)
set -eu
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
dir="${ROCKER_DOCKER_DIR:-/var/cache/rocker-docker}"
need_packages containerd tini iptables libdevmapper1.02.1 libsystemd0 busybox-static tar coreutils
if [ ! -x "$dir/root/usr/sbin/dockerd" ] || [ ! -x "$dir/root/usr/bin/docker" ]; then
    apt_update
    mkdir -p "$dir/debs"
    # apt fetches as the _apt user where it can write.
    chown _apt "$dir/debs" 2>/dev/null || true
    (cd "$dir/debs" && rm -f docker.io_*.deb && apt-get download docker.io)
    rm -rf "$dir/root.new"
    dpkg-deb -x "$dir"/debs/docker.io_*.deb "$dir/root.new"
    rm -rf "$dir/root"
    mv "$dir/root.new" "$dir/root"
fi
# The package's docker-init is a relative link to tini-static, which the tini package has in
# /usr/bin: point the unpacked copy there (dockerd finds docker-init in its PATH).
ln -sfn /usr/bin/tini-static "$dir/root/usr/bin/tini-static"
"$dir/root/usr/sbin/dockerd" --version
"$dir/root/usr/bin/docker" --version
containerd --version
