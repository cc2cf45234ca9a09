#!/usr/bin/env bash
# Builds klab's base image without any image registry: a minimal Debian bookworm made with
# debootstrap, the tools pods and troubleshooters need on a node, and this machine's Node.js.
# The Dockerfile then builds on it with: --build-arg BASE_IMAGE=klab-base:bookworm
# Usage (as root): docker/build-base-image.sh [IMAGE_TAG]
set -euo pipefail
tag=${1:-klab-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists"
  exit 0
fi
for tool in debootstrap docker node npm; do
  command -v "$tool" >/dev/null || { echo "build-base-image: '$tool' is required (apt-get install debootstrap docker.io)" >&2; exit 1; }
done

root=$(mktemp -d /tmp/klab-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
packages=ca-certificates,iproute2,util-linux,curl,dnsutils,iputils-ping,tcpdump,busybox,procps,iptables,python3,make,g++
echo "debootstrap bookworm into $root"
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >/dev/null

# The machine's Node.js and npm, laid out as the official node images have them.
node_bin=$(readlink -f "$(command -v node)")
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
install -m 0755 "$node_bin" "$root/usr/local/bin/node"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
# node-gyp builds against the running node's headers; ship them so no download is needed.
if [[ -d /usr/include/node ]]; then
  mkdir -p "$root/usr/local/include"
  cp -a /usr/include/node "$root/usr/local/include/node"
fi
# Trust what this machine trusts (a registry behind a TLS-inspecting proxy included), for apt,
# curl and npm alike, and keep this machine's global npm settings.
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
fi
global_npmrc=$(npm config get globalconfig 2>/dev/null || true)
mkdir -p "$root/usr/local/etc"
if [[ -n $global_npmrc && -f $global_npmrc ]]; then
  cp "$global_npmrc" "$root/usr/local/etc/npmrc"
fi
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' - "$tag" >/dev/null
echo "built $tag ($(node --version))"
