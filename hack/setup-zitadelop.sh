#!/usr/bin/env bash
# Builds the zitadelop test server (an OAuth2 server on zitadel/oidc's op
# package, hack/tools/zitadelop) from the Go module proxy into a cache outside
# the clone, links it as bin/zitadelop, and prints the binary path. Skips the
# build when the binary for this source exists.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src="$root/hack/tools/zitadelop"
# The cache key covers the server's own code too, not only the library version.
sum=$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go | sha256sum | cut -c1-12)
cache="${TOKEN_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/token-operator}/zitadelop-$sum"
bin="$cache/zitadelop"

mkdir -p "$cache" "$root/bin"

if [ ! -x "$bin" ]; then
  echo "building zitadelop (first run only)" >&2
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$bin.tmp.$$" .)
  mv "$bin.tmp.$$" "$bin"
fi

ln -sfn "$bin" "$root/bin/zitadelop"
echo "$bin"
