#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy (no prebuilt download)
# into a cache outside the clone, links it as bin/k8s/<version>, and prints the
# folder to use as KUBEBUILDER_ASSETS. Skips the build when the binaries exist.
# KUBE_VERSION and KUBE_MODULE (a folder under hack/tools whose go.mod pins that
# version) select another API server; hack/setup-envtest-oldest.sh uses them.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.2}
KUBE_MODULE=${KUBE_MODULE:-kube-apiserver}
ETCD_VERSION=3.6.16
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${TOKEN_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/token-operator}/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}"
link="$root/bin/k8s/$KUBE_VERSION"

mkdir -p "$cache" "$root/bin/k8s"

ldflags=
build() { # build <module dir> <package> <output>
  local dir=$1 pkg=$2 out=$3
  echo "building $(basename "$out") from $pkg (first run only, several minutes)" >&2
  (cd "$root/hack/tools/$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
}

# The same etcd serves every API-server version: reuse one already built.
for other in "$(dirname "$cache")"/k8s-*-etcd-"$ETCD_VERSION"/etcd; do
  [ -x "$cache/etcd" ] || { [ -x "$other" ] && cp "$other" "$cache/etcd.tmp" && mv "$cache/etcd.tmp" "$cache/etcd"; } || true
done
[ -x "$cache/etcd" ] || build etcd go.etcd.io/etcd/server/v3 "$cache/etcd"
# Stamp the version so that 'kube-apiserver --version' and /version tell which one runs.
v=component-base/version
ldflags="-X k8s.io/$v.gitVersion=v$KUBE_VERSION -X k8s.io/$v.gitMajor=${KUBE_VERSION%%.*} -X k8s.io/$v.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)"
[ -x "$cache/kube-apiserver" ] || build "$KUBE_MODULE" k8s.io/kubernetes/cmd/kube-apiserver "$cache/kube-apiserver"

ln -sfn "$cache" "$link"
echo "$link"
