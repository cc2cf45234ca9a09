#!/bin/sh
# Builds a pod's private filesystem view, then becomes the pod's infra ("pause") process.
# Runs inside fresh mount (and UTS) namespaces, already in the pod's network namespace.
# usage: pod-root.sh ROOT FILES HOSTNAME HOSTNET
# ROOT: the skeleton the agent made (the node's top-level directories and symlinks, the image
# launchers); FILES: dir holding resolv.conf, hosts, hostname and the fstab files of the plan
# (mounts.ts planMounts); HOSTNAME: '' for hostNetwork pods (they keep the node's); HOSTNET: 1 or 0.
# Every mount(8) run mounts a whole fstab: a pod starts with a handful of processes, not one per mount.
set -eu
root=$1 files=$2 name=$3 hostnet=$4
mount --all --fstab "$files/fstab.base"
# Copies of other pods' namespace mounts would keep those namespaces alive after they are deleted.
umount -l "$root/run/netns" 2>/dev/null || :
if [ "$hostnet" = 0 ]; then
  # a fresh sysfs shows the pod's own network devices, as `ip netns exec` does
  if [ -d "$root/sys" ]; then
    mount -t sysfs sysfs "$root/sys" 2>/dev/null || mount --rbind /sys "$root/sys"
  fi
  ip link set lo up
fi
read -r overlays <"$files/overlays"
if [ "$overlays" -gt 0 ]; then
  set --
  n=1
  while [ $n -le "$overlays" ]; do
    set -- "$@" "$files/ovl/$n/upper" "$files/ovl/$n/work"
    n=$((n + 1))
  done
  mkdir -p "$@"
fi
n=1
while [ -e "$files/fstab.$n" ]; do
  if [ -e "$files/mountpoints.$n" ]; then
    while IFS= read -r f; do
      [ -d "${f%/*}" ] || mkdir -p "${f%/*}"
      [ -e "$f" ] || : >"$f"
    done <"$files/mountpoints.$n"
  fi
  mount --all --fstab "$files/fstab.$n"
  n=$((n + 1))
done
if [ -n "$name" ]; then hostname "$name"; fi
echo ready
exec chroot "$root" sleep infinity
