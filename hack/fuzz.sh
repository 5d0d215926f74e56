#!/usr/bin/env bash
# Runs every Go fuzz target of the repository briefly: FUZZTIME each (default 5s).
# Plain `go test` already runs their seed corpora; this explores beyond them.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
git ls-files '*_test.go' | xargs grep -l '^func Fuzz' | while read -r file; do
  pkg=./$(dirname "$file")
  for name in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzzing $name in $pkg for $fuzztime"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
