#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy (no prebuilt download)
# into a cache outside the clone, links it as bin/k8s/<version>, and prints the
# folder to use as KUBEBUILDER_ASSETS. Skips the build when the binaries exist.
set -euo pipefail

KUBE_VERSION=1.37.2
ETCD_VERSION=3.6.16
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${TOKEN_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/token-operator}/k8s-${KUBE_VERSION}-etcd-${ETCD_VERSION}"
link="$root/bin/k8s/$KUBE_VERSION"

mkdir -p "$cache" "$root/bin/k8s"

build() { # build <module dir> <package> <output>
  local dir=$1 pkg=$2 out=$3
  echo "building $(basename "$out") from $pkg (first run only, several minutes)" >&2
  (cd "$root/hack/tools/$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
}

[ -x "$cache/etcd" ] || build etcd go.etcd.io/etcd/server/v3 "$cache/etcd"
[ -x "$cache/kube-apiserver" ] || build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$cache/kube-apiserver"

ln -sfn "$cache" "$link"
echo "$link"
