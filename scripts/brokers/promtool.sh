# shellcheck shell=bash
# promtool for the alerting-rule tests; sourced by scripts/brokers.sh.
#
# Not a broker: nothing runs. `start` installs Debian's `prometheus` package when `promtool` is
# missing (it carries promtool), `env` says where promtool is, `stop` has nothing to stop.

BROKERS+=(promtool)

promtool_start() {
    if ! command -v promtool >/dev/null; then
        apt_install prometheus
        command -v promtool >/dev/null || die "promtool still not on PATH after installing prometheus"
    fi
    say "promtool: $(promtool --version 2>&1 | head -n 1)"
}

promtool_stop() {
    :
}

promtool_env() {
    local path
    path="$(command -v promtool 2>/dev/null)" || return 0
    echo "export SCALER_TEST_PROMTOOL=$path"
}
