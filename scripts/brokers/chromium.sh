# shellcheck shell=bash
# Headless Chromium for the status-page test; sourced by scripts/brokers.sh.
#
# Not a broker: nothing runs. `start` installs Debian's `chromium` package when no chromium is
# on PATH, `env` says where it is, `stop` has nothing to stop.

BROKERS+=(chromium)

chromium_binary() {
    command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null
}

chromium_start() {
    if ! chromium_binary >/dev/null; then
        apt_install chromium
        chromium_binary >/dev/null || die "chromium still not on PATH after installing it"
    fi
    say "chromium: $("$(chromium_binary)" --version 2>/dev/null | head -n 1)"
}

chromium_stop() {
    :
}

chromium_env() {
    local path
    path="$(chromium_binary)" || return 0
    echo "export SCALER_TEST_CHROMIUM=$path"
}
