#!/usr/bin/env bash
# Runs every Go fuzz target of the repository briefly: FUZZTIME each (default 5s).
# Plain `go test` already runs their seed corpora; this explores beyond them.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
# Go 1.26's fuzz coordinator can report its own -fuzztime deadline as a
# failure (go.dev/issue/75804); 1.27 fixed it. The go command fetches this
# toolchain from the module proxy once (about 76 MB) and keeps it in GOMODCACHE.
export GOTOOLCHAIN=${FUZZ_GOTOOLCHAIN:-go1.27.3}
git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | while read -r file; do
  pkg=./$(dirname "$file")
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzzing $name in $pkg for $fuzztime"
    # A new input is minimized for up to a minute by default, which would take
    # a short run's whole budget; a crasher is written either way.
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime 1s "$pkg"
  done
done
