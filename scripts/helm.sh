#!/usr/bin/env bash
# Print the path of a helm binary, building it first if it is not cached yet.
#   scripts/helm.sh            build (once) and print the path, e.g. ~/.cache/keda-queue-scaler/helm-v3.22.0/helm
# Helm is built with the machine's Go from the Go module proxy (`go install helm.sh/helm/v3/cmd/helm@V`),
# because no other download site is reachable here; the first build takes a few minutes, later
# calls return at once. The binary lives outside the repository, keyed by version.
# Environment: HELM_VERSION (default below), KQS_CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/keda-queue-scaler).
# Progress goes to stderr; stdout is the path only, so `helm="$(scripts/helm.sh)"` works.
set -euo pipefail

version="${HELM_VERSION:-v3.22.0}"
cache="${KQS_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/keda-queue-scaler}"
dir="$cache/helm-$version"
helm="$dir/helm"

say() { echo "helm.sh: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

if [[ -x "$helm" ]]; then
    echo "$helm"
    exit 0
fi

command -v go >/dev/null || die "no Go toolchain on PATH: install Go (1.24 or newer) to build helm $version"
mkdir -p "$dir"

# One build at a time: a second caller waits for the first and then finds the binary.
exec 9>"$dir/.lock"
if command -v flock >/dev/null; then
    flock 9
fi
if [[ -x "$helm" ]]; then
    echo "$helm"
    exit 0
fi

tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
say "building helm $version with $(go version | cut -d' ' -f3) from the Go module proxy (a few minutes, once)"
start=$SECONDS
# CGO off: a static binary, no C compiler needed. The version flag makes `helm version` honest.
GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
    go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
    "helm.sh/helm/v3/cmd/helm@$version" >&2 ||
    die "go install helm.sh/helm/v3/cmd/helm@$version failed"
"$tmp/helm" version --short >/dev/null || die "the helm binary that was built does not run"
mv -f "$tmp/helm" "$helm"
say "built $("$helm" version --short) in $((SECONDS - start)) s: $helm"
echo "$helm"
