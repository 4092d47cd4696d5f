#!/usr/bin/env bash
# Set up a development machine: system packages when missing, a venv with PiCAR and its dev tools.
# Idempotent: fast when everything is already there. Used by scripts/test and scripts/demo.
set -euo pipefail
cd "$(dirname "$0")/.."

want_pkgs=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || want_pkgs+=(mosquitto)
if [ "${PICAR_NEED_CHROMIUM:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then want_pkgs+=(chromium); fi
if [ ${#want_pkgs[@]} -gt 0 ]; then
    echo "bootstrap: installing ${want_pkgs[*]} from apt"
    sudo_cmd=""
    [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${want_pkgs[@]}" >/dev/null
    # A packaged broker may start on 1883; PiCAR's tests and demo run their own on free ports.
fi

py=${PYTHON:-python3}
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "bootstrap: Python >= 3.11 is required ($py is $("$py" --version 2>&1))" >&2
    exit 1
fi
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    "$py" -m venv .venv
fi
stamp=.venv/.picar-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing PiCAR and its dev tools into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".[dev]"
    touch "$stamp"
fi
