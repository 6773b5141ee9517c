#!/usr/bin/env bash
# Installs a GW Studio .deb into a clean Debian 12 chroot, the way a user's apt would (tests/tst_install).
#   packaging/test-install.sh DEB CHROOT     make CHROOT afresh, apt-get install DEB in it, add a user
#   packaging/test-install.sh --clean CHROOT unmount and remove CHROOT
# The base system comes from debootstrap (minbase, bookworm, the host's mirror); a tarball of it and apt's
# downloaded packages are cached under /var/cache/gw-studio-install, so later runs skip the downloads.
# Needs root, debootstrap and the network to the Debian mirror.
set -euo pipefail

cache=/var/cache/gw-studio-install
unmount_all() {
  local root=$1
  for m in var/cache/apt/archives proc; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount "$root/$m"; fi
  done
}

if [ "${1:-}" = "--clean" ]; then
  root=$(realpath -m "$2")
  unmount_all "$root"
  rm -rf --one-file-system "$root"
  exit 0
fi

[ $# -eq 2 ] || { echo "usage: $0 DEB CHROOT | --clean CHROOT" >&2; exit 2; }
deb=$(realpath "$1")
root=$(realpath -m "$2")
[ -f "$deb" ] || { echo "$deb: no such package" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (debootstrap, chroot)" >&2; exit 77; }
command -v debootstrap >/dev/null || { echo "needs debootstrap (packaging/dev.sh installs it)" >&2; exit 77; }

# The host's mirror, so that the chroot sees the same Debian 12 packages.
mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}

unmount_all "$root"
rm -rf --one-file-system "$root"
mkdir -p "$cache/archives" "$root"
start=$(date +%s)
if [ -f "$cache/bookworm-minbase.tar" ]; then
  tar -xf "$cache/bookworm-minbase.tar" -C "$root"
  echo "base system from $cache/bookworm-minbase.tar"
else
  debootstrap --variant=minbase bookworm "$root" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; echo "debootstrap bookworm $mirror failed" >&2; exit 1; }
  tar -cf "$cache/bookworm-minbase.tar.partial" -C "$root" . && mv "$cache/bookworm-minbase.tar.partial" "$cache/bookworm-minbase.tar"
  echo "base system by debootstrap from $mirror in $(( $(date +%s) - start )) s"
fi
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/"
  rm -f "$root/etc/apt/sources.list"
fi
# /proc stays mounted for what runs in the chroot afterwards (LibTorch reads /proc/cpuinfo); --clean
# unmounts it. apt's download cache is bound only while apt runs.
mount -t proc proc "$root/proc"
mount --bind "$cache/archives" "$root/var/cache/apt/archives"
trap 'umount "$root/var/cache/apt/archives" 2>/dev/null || true' EXIT
cp "$deb" "$root/tmp/"
t=$(date +%s)
chroot "$root" apt-get update -q > "$cache/apt.log" 2>&1
chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$deb")" >> "$cache/apt.log" 2>&1 ||
  { tail -30 "$cache/apt.log" >&2; echo "apt-get install $(basename "$deb") failed in $root" >&2; exit 1; }
echo "apt-get install: $(grep -c '^Setting up' "$cache/apt.log") packages set up in $(( $(date +%s) - t )) s"
chroot "$root" useradd --create-home --shell /bin/bash researcher
echo "installed in $root in $(( $(date +%s) - start )) s"
