#!/usr/bin/env bash
# Builds Herald's release binaries: static (CGO_ENABLED=0), reproducible
# (-trimpath, no VCS stamping), the version stamped into main.version.
# The release workflow, CI and deploy/Dockerfile all build through this
# script, so every binary is built with the same flags.
#
#   deploy/build.sh                          linux and darwin, amd64 and arm64, into dist/
#   deploy/build.sh linux/arm64              one target
#   deploy/build.sh -o /out -v v1.2.3 linux/amd64
#   deploy/build.sh --archive                also herald-VERSION-OS-ARCH.tar.gz and SHA256SUMS
#
# The binaries are DIR/herald-OS-ARCH. VERSION defaults to $HERALD_VERSION,
# else `git describe --tags --always --dirty`, else "dev".
#
# They are built with the Go toolchain named in deploy/release-toolchain
# (the go command fetches it through the module proxy when the machine's Go
# is older): a patch release of Go fixes the standard library a release
# ships, and deploy/vulncheck.sh checks Herald against that same toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

GOTOOLCHAIN=$(tr -d '[:space:]' < deploy/release-toolchain)
export GOTOOLCHAIN

out=dist
version="${HERALD_VERSION:-}"
archive=false
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--out) out="$2"; shift 2 ;;
    -v|--version) version="$2"; shift 2 ;;
    --archive) archive=true; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "build.sh: unknown option $1" >&2; exit 2 ;;
    */*) targets+=("$1"); shift ;;
    *) echo "build.sh: a target is GOOS/GOARCH, got $1" >&2; exit 2 ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64)
fi
if [ -z "$version" ]; then
  version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
fi

mkdir -p "$out"
for target in "${targets[@]}"; do
  goos=${target%/*}
  goarch=${target#*/}
  bin="$out/herald-$goos-$goarch"
  echo "build.sh: $bin ($version)"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build \
    -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=$version" \
    -o "$bin" ./cmd/herald
  if $archive; then
    name="herald-$version-$goos-$goarch"
    stage=$(mktemp -d)
    mkdir "$stage/$name"
    cp "$bin" "$stage/$name/herald"
    cp README.md "$stage/$name/"
    tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
    rm -rf "$stage"
  fi
done
if $archive; then
  (cd "$out" && sha256sum ./*.tar.gz | sed 's| \./| |' > SHA256SUMS)
fi
