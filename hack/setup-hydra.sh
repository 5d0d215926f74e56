#!/usr/bin/env bash
# Builds Ory Hydra from the Go module proxy (no prebuilt download) into a cache
# outside the clone, links it as bin/hydra, and prints the binary path. Skips
# the build when the binary exists. Needs cgo (a C compiler) for the SQLite
# driver behind DSN=memory.
set -euo pipefail

HYDRA_VERSION=2.3.0
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${TOKEN_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/token-operator}/hydra-v${HYDRA_VERSION}"
bin="$cache/hydra"

mkdir -p "$cache" "$root/bin"

if [ ! -x "$bin" ]; then
  if ! command -v "${CC:-cc}" >/dev/null 2>&1; then
    echo "setup-hydra: no C compiler (${CC:-cc}); Hydra's SQLite driver needs cgo (apt-get install gcc)" >&2
    exit 1
  fi
  echo "building hydra v$HYDRA_VERSION (first run only, several minutes)" >&2
  (cd "$root/hack/tools/hydra" && CGO_ENABLED=1 GOFLAGS=-mod=mod \
    go build -trimpath -tags sqlite,sqlite_omit_load_extension -o "$bin.tmp.$$" github.com/ory/hydra/v2)
  mv "$bin.tmp.$$" "$bin"
fi

ln -sfn "$bin" "$root/bin/hydra"
echo "$bin"
