#!/usr/bin/env bash
# Builds promtool (Prometheus rule checks and rule unit tests) from the Go
# module proxy (no prebuilt download) into a cache outside the clone, links it
# as bin/promtool, and prints the binary path. Skips the build when the binary
# exists. The first build takes several minutes (large dependency tree).
set -euo pipefail

PROMTOOL_VERSION=0.316.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${TOKEN_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/token-operator}/tools/promtool-v${PROMTOOL_VERSION}"
bin="$cache/promtool"

mkdir -p "$cache" "$root/bin"

if [ ! -x "$bin" ]; then
  echo "building promtool v$PROMTOOL_VERSION (first run only, several minutes)" >&2
  tmp=$(mktemp -d "$cache/build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$tmp" \
    go install -trimpath "github.com/prometheus/prometheus/cmd/promtool@v${PROMTOOL_VERSION}"
  mv "$tmp/promtool" "$bin"
fi

ln -sfn "$bin" "$root/bin/promtool"
echo "$bin"
