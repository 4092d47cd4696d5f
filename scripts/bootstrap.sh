#!/usr/bin/env bash
# Set up a machine for PiCAR: the system packages of scripts/system-packages.txt that are missing, then a
# .venv with the locked Python packages (requirements/dev.lock) and PiCAR itself, editable.
# Idempotent: fast when everything is already there. Used by scripts/test, scripts/demo and CI.
#   PICAR_APT_GROUPS="base test"   which groups of system-packages.txt to install (default: base)
set -euo pipefail
cd "$(dirname "$0")/.."

groups=" ${PICAR_APT_GROUPS:-base} "
want_pkgs=()
while read -r pkg group _; do
    case "$pkg" in ''|'#'*) continue ;; esac
    [[ "$groups" == *" $group "* ]] || continue
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        want_pkgs+=("$pkg")
    fi
done < scripts/system-packages.txt
if [ ${#want_pkgs[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: missing system packages (Debian names): ${want_pkgs[*]}; install them and re-run" >&2
        exit 1
    fi
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
lock=requirements/dev.lock
stamp=.venv/.picar-installed
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(sha256sum "$lock" pyproject.toml | sha256sum)" ]; then
    echo "bootstrap: installing $lock and PiCAR into .venv"
    # Exactly the locked versions, each checked against its hash; then PiCAR itself with no other deps.
    .venv/bin/python -m pip install -q --require-hashes --no-deps -r "$lock"
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
    .venv/bin/python -m pip check
    sha256sum "$lock" pyproject.toml | sha256sum > "$stamp"
fi
