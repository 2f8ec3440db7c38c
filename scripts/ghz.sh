#!/usr/bin/env bash
# Install ghz (the gRPC load generator bench.keda_load drives) once, and print its path.
#   scripts/ghz.sh            install if missing, print the binary's path on stdout
# Built from source with `go install` through the Go module proxy (no prebuilt download), into
# ~/.cache/keda-queue-scaler/bin/ (KQS_CACHE_DIR overrides ~/.cache/keda-queue-scaler).
# Idempotent: a binary already there at the pinned version is reused.
set -euo pipefail

GHZ_VERSION="${GHZ_VERSION:-v0.93.0}"
CACHE="${KQS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keda-queue-scaler}"
BIN_DIR="$CACHE/bin"
GHZ="$BIN_DIR/ghz"
STAMP="$BIN_DIR/.ghz-version"

say() { echo "ghz.sh: $*" >&2; }

if [[ -x "$GHZ" && -f "$STAMP" && "$(cat "$STAMP")" == "$GHZ_VERSION" ]]; then
    echo "$GHZ"
    exit 0
fi

GO="$(command -v go || true)"
if [[ -z "$GO" && -x /usr/local/go/bin/go ]]; then
    GO=/usr/local/go/bin/go
fi
if [[ -z "$GO" ]]; then
    say "error: no Go toolchain on PATH (nor /usr/local/go/bin/go); install Go >= 1.21 first"
    exit 1
fi

mkdir -p "$BIN_DIR"
say "building github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION with $("$GO" version) into $BIN_DIR"
# a private build dir: a go.mod in the working directory must not take part
build_dir="$(mktemp -d)"
trap 'rm -rf "$build_dir"' EXIT
(cd "$build_dir" && GOBIN="$BIN_DIR" GOFLAGS=-buildvcs=false \
    "$GO" install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" >&2) || {
    say "error: go install of ghz $GHZ_VERSION failed (is the Go module proxy reachable?)"
    exit 1
}
[[ -x "$GHZ" ]] || {
    say "error: go install succeeded but $GHZ is missing"
    exit 1
}
echo "$GHZ_VERSION" >"$STAMP"
echo "$GHZ"
