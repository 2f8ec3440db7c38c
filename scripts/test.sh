#!/usr/bin/env bash
# The whole CI gate (run by `make test`, after `make install brokers`):
#   ruff check, ruff format --check, mypy, the layer contracts (import-linter), proto drift check,
#   then every test against the real brokers that scripts/brokers.sh started, with
#   SCALER_REQUIRE_INTEGRATION=1 (no skips).
# Every step runs even if an earlier one failed; the exit status is that of the first failure.
#   scripts/test.sh [PYTEST_ARGS...]   e.g. scripts/test.sh -k redis -x
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "test: no virtualenv at $venv; run 'make install' (or 'make test')" >&2
    exit 1
fi
PATH="$(cd "$venv/bin" && pwd):$PATH"
export PATH

summary=()
first_failure=0

# step NAME CMD...: run one step, print a one-line result, remember the first failure.
step() {
    local name="$1" status=0 start=$SECONDS
    shift
    echo "==> $name"
    "$@" || status=$?
    local line
    if [[ $status -eq 0 ]]; then
        line="ok      $name ($((SECONDS - start)) s)"
    else
        line="FAILED  $name (exit $status, $((SECONDS - start)) s)"
        [[ $first_failure -ne 0 ]] || first_failure=$status
    fi
    echo "--> $line"
    summary+=("$line")
}


integration_tests() {
    local env status=0
    env="$(scripts/brokers.sh env)" || return 1
    eval "$env"
    export SCALER_REQUIRE_INTEGRATION=1
    echo "$env" | sed 's/^export /test: /'
    pytest "$@" || status=$?
    if [[ $status -eq 5 ]]; then
        echo "test: pytest collected no tests (exit 5); an empty run proves nothing" >&2
        return 1
    fi
    return $status
}

step "ruff check" ruff check .
step "ruff format --check" ruff format --check .
step "mypy" mypy
step "layer contracts (lint-imports)" lint-imports
step "proto drift (scripts/proto.sh --check)" scripts/proto.sh --check
step "pytest (SCALER_REQUIRE_INTEGRATION=1)" integration_tests "$@"

echo
echo "test summary:"
printf '  %s\n' "${summary[@]}"
if [[ $first_failure -ne 0 ]]; then
    echo "test: FAILED" >&2
    exit "$first_failure"
fi
echo "test: all steps passed"
