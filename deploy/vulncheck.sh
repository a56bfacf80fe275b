#!/usr/bin/env bash
# Fails when Herald's code reaches a known vulnerability: govulncheck (source
# mode: only vulnerabilities in functions Herald's code can call count) over
# every package, with the Go toolchain the release is built with
# (deploy/release-toolchain), since that standard library is the one
# Herald ships.
#
# govulncheck normally fetches vuln.go.dev, which build machines may not
# reach; the same database is published as a Go module
# (golang.org/x/vulndb, its OSV files), so it comes through the module
# proxy like any dependency and is indexed here with the Go team's own
# indexdb. Both tools and the database are pinned below: bump them
# together, on purpose.
#
#   deploy/vulncheck.sh            check ./...
#   deploy/vulncheck.sh -show verbose
set -euo pipefail
cd "$(dirname "$0")/.."

govulncheck_version=v1.9.0
vulndb_version=v0.0.0-20261105234957-e22db6528018

toolchain=$(tr -d '[:space:]' < deploy/release-toolchain)
export GOTOOLCHAIN="$toolchain"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/herald/vulndb-$vulndb_version"
if [ ! -f "$cache/index/modules.json" ]; then
  echo "vulncheck: indexing golang.org/x/vulndb@$vulndb_version"
  src=$(go mod download -json "golang.org/x/vulndb@$vulndb_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src/data/osv" ] || { echo "vulncheck: no data/osv in $src" >&2; exit 1; }
  tmp="$cache.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$(dirname "$cache")"
  go run "golang.org/x/vulndb/cmd/indexdb@$vulndb_version" -vulns "$src/data/osv" -out "$tmp"
  rm -rf "$cache"
  mv "$tmp" "$cache"
fi

echo "vulncheck: govulncheck $govulncheck_version with $toolchain, database of $vulndb_version"
go run "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version" -db "file://$cache" "$@" ./...
