#!/usr/bin/env bash
# Generate scaler/proto from protos/externalscaler.proto.
#   scripts/proto.sh .        regenerate in place
#   scripts/proto.sh --check  generate into a temp dir and fail on any drift from what is committed
set -euo pipefail
cd "$(dirname "$0")/.."
generate() {
    local out="$1"
    mkdir -p "$out/scaler/proto"
    # -Iscaler/proto=protos makes the generated imports read `from scaler.proto import ...`
    python -m grpc_tools.protoc -Iscaler/proto=protos \
        --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" --mypy_grpc_out="$out" \
        protos/externalscaler.proto
}
if [[ "${1:-.}" == "--check" ]]; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    generate "$tmp"
    status=0
    for f in "$tmp"/scaler/proto/*; do
        name="scaler/proto/$(basename "$f")"
        if ! diff -u "$name" "$f"; then
            echo "proto drift: $name differs from a fresh generation; run 'make proto' and commit" >&2
            status=1
        fi
    done
    [[ $status -eq 0 ]] && echo "proto-check: generated code matches protos/externalscaler.proto"
    exit $status
fi
generate .
