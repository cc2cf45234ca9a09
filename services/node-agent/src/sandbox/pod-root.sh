#!/bin/sh
# Builds a pod's private filesystem view, then becomes the pod's infra ("pause") process.
# Runs inside fresh mount (and UTS) namespaces, already in the pod's network namespace.
# usage: pod-root.sh ROOT FILES HOSTNAME HOSTNET LAUNCHER...
# ROOT: empty directory to build the root in; FILES: dir holding resolv.conf, hosts, hostname and
# the launchers; HOSTNAME: '' for hostNetwork pods (they keep the node's); HOSTNET: 1 or 0.
set -eu
root=$1 files=$2 name=$3 hostnet=$4
shift 4
mount --make-rprivate /
mount -t tmpfs -o mode=0755 klab-pod "$root"
for entry in /*; do
  base=${entry#/}
  if [ -L "$entry" ]; then
    cp -P "$entry" "$root/$base"
  elif [ -d "$entry" ]; then
    case "$base" in lost+found) continue ;; esac
    mkdir "$root/$base"
    if [ "$base" = sys ] && [ "$hostnet" = 0 ]; then
      # a fresh sysfs shows the pod's own network devices, as `ip netns exec` does
      mount -t sysfs sysfs "$root/sys" 2>/dev/null || mount --rbind /sys "$root/sys"
    else
      mount --rbind "$entry" "$root/$base"
    fi
  fi
done
# Copies of other pods' namespace mounts would keep those namespaces alive after they are deleted.
if mountpoint -q "$root/run/netns" 2>/dev/null; then umount -l "$root/run/netns"; fi
# Volumes and launchers below /: the mount point is made in a private overlay on the deepest
# directory that exists, so the node's own directories are never written to.
overlays=""
if [ -s "$files/mounts" ]; then
  mkdir -p "$files/ovl"
  mount -t tmpfs -o mode=0700 klab-ovl "$files/ovl"
  n=0
  tab=$(printf '\t')
  while IFS=$tab read -r kind src target anchor ro; do
    if [ "$anchor" != "$target" ] && [ "$anchor" != / ]; then
      mine=0
      for o in $overlays; do
        case "$anchor/" in "$o"/*) mine=1 ;; esac
      done
      if [ $mine = 0 ]; then
        n=$((n + 1))
        mkdir -p "$files/ovl/$n/upper" "$files/ovl/$n/work"
        mount -t overlay "klab-pod-$n" -o "lowerdir=$anchor,upperdir=$files/ovl/$n/upper,workdir=$files/ovl/$n/work" "$root$anchor"
        overlays="$overlays $anchor"
      fi
    fi
    if [ "$kind" = file ]; then
      mkdir -p "$(dirname "$root$target")"
      [ -e "$root$target" ] || : >"$root$target"
    else
      mkdir -p "$root$target"
    fi
    mount --bind "$src" "$root$target"
    if [ "$ro" = ro ]; then mount -o remount,bind,ro "$root$target"; fi
  done <"$files/mounts"
fi
for f in resolv.conf hosts hostname; do
  target="$root/etc/$f"
  if [ -e "$target" ] || [ -L "$target" ]; then :; else continue; fi
  mount --bind "$files/$f" "$target"
done
for launcher in "$@"; do
  cp "$files/bin/$launcher" "$root/$launcher"
  chmod 0755 "$root/$launcher"
done
if [ -n "$name" ]; then hostname "$name"; fi
echo ready
exec chroot "$root" sleep infinity
