#!/bin/sh
# Installs what crates/runtime/tests/client_podman.rs needs. Idempotent; run as root on
# Debian 12 (bookworm). --no-install-recommends keeps out buildah, dbus-user-session,
# fuse-overlayfs, slirp4netns, uidmap and netavark, none of which the test uses.
#   podman          podman 4.3 (pulls conmon, containers-common, containernetworking-plugins,
#                   iptables; crun is already a dependency of podman; no service is started)
#   busybox-static  the static /bin/busybox the test image is built from
#   bsdutils        script(1): a real terminal for the `-t` scenario
#   tar             the image tarball given to `podman import`
# `apt-get -s install --no-install-recommends podman` on bookworm installs only the packages
# above (plus security updates of login/passwd) and removes nothing.
set -eu
packages="podman conmon busybox-static bsdutils tar"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends $missing
fi
podman --version
conmon --version | head -n 1
