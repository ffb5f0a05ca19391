#!/usr/bin/env bash
# Builds the Kubernetes binaries the tests need from Go modules and caches them outside
# the work tree, keyed by version. Prints the folder that holds them.
#
#   SHARDWARDEN_ASSETS=/dir   use prebuilt binaries from /dir instead (nothing is built);
#                             the dir must hold every binary in need=(...) below
#   SHARDWARDEN_CACHE=/dir    cache root (default: $XDG_CACHE_HOME or ~/.cache, /shardwarden)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091
source "$here/versions.env"

# kubelet, kube-proxy, crictl and coredns run the real node (testenv/real-node.ts).
need=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm kubelet kube-proxy crictl coredns)

if [ -n "${SHARDWARDEN_ASSETS:-}" ]; then
  for b in "${need[@]}"; do
    [ -x "$SHARDWARDEN_ASSETS/$b" ] || { echo "SHARDWARDEN_ASSETS=$SHARDWARDEN_ASSETS has no executable '$b'" >&2; exit 1; }
  done
  echo "$SHARDWARDEN_ASSETS"; exit 0
fi

command -v go >/dev/null || { echo "building the Kubernetes binaries needs Go (or set SHARDWARDEN_ASSETS to prebuilt ones)" >&2; exit 1; }

cache_root=${SHARDWARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shardwarden}
out="$cache_root/bin/k8s-$K8S_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
mkdir -p "$out"

missing=()
for b in "${need[@]}"; do [ -x "$out/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then echo "$out"; exit 0; fi
# Two checkouts building at once share the source folder and GOBIN: one builds, the other waits
# for it and then finds what is already there.
exec 9>"$cache_root/bin/.build.lock"
flock 9
missing=()
for b in "${need[@]}"; do [ -x "$out/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then echo "$out"; exit 0; fi
echo "building ${missing[*]} into $out (first run only; takes a while on 2 cores)" >&2

export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
src="$cache_root/src/k8s-$K8S_VERSION"
mkdir -p "$src/etcd"
staging_minor="v0.${K8S_VERSION#1.}"
# k8s.io/kubernetes points its staging modules at ./staging; pin each to the published
# v0.x.y of the same release instead, as every project that imports k8s.io/kubernetes does.
k8s_module=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION")
gomod=$(echo "$k8s_module" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
k8s_dir=$(echo "$k8s_module" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
{
  echo "module shardwarden.local/k8sbin"
  echo "go 1.24"
  echo "require k8s.io/kubernetes v$K8S_VERSION"
  grep -oE '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v v="$staging_minor" '{print "replace " $1 " => " $1 " " v}'
} > "$src/go.mod"
# etcd at the version Kubernetes itself pins, through its public entry point.
cat > "$src/etcd/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

cd "$src"
build_k8s() {
  case "$1" in
    etcd) go build -o "$out/etcd.tmp" ./etcd ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubectl|kubelet|kube-proxy)
      go build -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION" \
        -o "$out/$1.tmp" "k8s.io/kubernetes/cmd/$1" ;;
    kwok) GOBIN="$src/gobin" go install "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" && mv "$src/gobin/kwok" "$out/kwok.tmp" ;;
    # cri-tools releases follow Kubernetes minors: v1.34.0 is the crictl of Kubernetes 1.34, so
    # K8S_VERSION (in the cache key) pins it too.
    crictl) GOBIN="$src/gobin" go install "sigs.k8s.io/cri-tools/cmd/crictl@v${K8S_VERSION%.*}.0" && mv "$src/gobin/crictl" "$out/crictl.tmp" ;;
    # CoreDNS at the version kubeadm of this Kubernetes release deploys.
    coredns)
      v=$(sed -n 's/^\s*CoreDNSVersion = "\(v[0-9.]*\)".*/\1/p' "$k8s_dir/cmd/kubeadm/app/constants/constants.go")
      [ -n "$v" ] || { echo "no CoreDNSVersion in k8s.io/kubernetes@v$K8S_VERSION's kubeadm constants" >&2; exit 1; }
      GOBIN="$src/gobin" go install "github.com/coredns/coredns@$v" && mv "$src/gobin/coredns" "$out/coredns.tmp" ;;
    helm) GOBIN="$src/gobin" go install -ldflags "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" && mv "$src/gobin/helm" "$out/helm.tmp" ;;
  esac
  mv "$out/$1.tmp" "$out/$1"
}
for b in "${missing[@]}"; do
  start=$(date +%s)
  build_k8s "$b" >&2
  echo "built $b in $(( $(date +%s) - start ))s" >&2
done
echo "$out"
