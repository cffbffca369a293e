#!/usr/bin/env bash
# From a fresh Debian machine (as root) to a running container: installs what rocker
# needs, builds it, makes a busybox root filesystem at /tmp/busybox and runs a container.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq busybox-static libseccomp-dev pkg-config >/dev/null

release=$(scripts/build-release.sh)
install -m 0755 "$release/rocker" "$release/rocker-runtime" /usr/local/bin/

# A root filesystem: static busybox and a relative symlink for each applet.
if [ ! -x /tmp/busybox/bin/busybox ]; then
  mkdir -p /tmp/busybox/bin
  cp /bin/busybox /tmp/busybox/bin/busybox
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "/tmp/busybox/bin/$applet"
  done
fi

rocker run --rm -rootfs=/tmp/busybox --cpus 0.5 -m 64m --pids-limit 50 --hostname demo \
  /bin/sh -c 'echo "hello from $(hostname): I am PID $$, and I see:"; ps; ip -o link'
echo "exit code: $?"
echo

# The same root filesystem as an image: imported, then run on a copy-on-write overlay.
tar -C /tmp/busybox -c . | rocker import --cmd "/bin/echo hello from an image" - local/busybox:demo
rocker run --rm local/busybox:demo
rocker run --rm local/busybox:demo /bin/sh -c 'echo changed > /hello; ls /'
rocker run --rm local/busybox:demo /bin/ls /   # the image is unchanged: no /hello
rocker images
echo
echo "Now try: rocker run -it -rootfs=/tmp/busybox /bin/sh"
echo "     or: rocker run -it local/busybox:demo /bin/sh"
echo "Images from a registry: rocker pull REGISTRY/NAME:TAG (this machine may reach none)"
