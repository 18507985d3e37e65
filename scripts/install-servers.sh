#!/usr/bin/env bash
# Install the real HTTP servers that tests/servers starts as pytest fixtures.
#
# Idempotent: installs only what is missing. As root with apt-get, missing Debian servers
# (nginx apache2 lighttpd caddy) are installed without starting their system services; the
# Python servers are pip-installed into the current interpreter. Without root or apt-get it
# says what is missing and exits 0: the tests skip servers that are not installed.
#
# Usage: scripts/install-servers.sh            (PYTHON=/path/to/python to pick the interpreter)
set -u

PYTHON="${PYTHON:-python3}"
LOG="${INSTALL_SERVERS_LOG:-${TMPDIR:-/tmp}/install-servers.log}"
DEB_PKGS=(nginx apache2 lighttpd caddy)
# pip name -> import name, space separated pairs
PY_PKGS=(
    "uvicorn:uvicorn"
    "starlette:starlette"
    "werkzeug:werkzeug"
    "aiohttp:aiohttp"
    "tornado:tornado"
    "twisted:twisted"
    "rangehttpserver:RangeHTTPServer"
    "httpx:httpx"
)

say() { printf 'install-servers: %s\n' "$*"; }

show_log_tail() {
    say "failed; last lines of $LOG:"
    tail -n 30 "$LOG" | sed 's/^/    /'
}

: >"$LOG" 2>/dev/null || LOG=/dev/null

# --- Debian servers -------------------------------------------------------------------------
deb_binary() {
    case "$1" in
        apache2) echo apache2 ;;
        *) echo "$1" ;;
    esac
}

missing_debs=()
for pkg in "${DEB_PKGS[@]}"; do
    bin="$(deb_binary "$pkg")"
    # Debian puts nginx/apache2 in /usr/sbin, which may not be on a non-root PATH.
    if command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ]; then
        continue
    fi
    missing_debs+=("$pkg")
done

if [ "${#missing_debs[@]}" -eq 0 ]; then
    say "Debian servers present: ${DEB_PKGS[*]}"
elif [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing Debian servers: ${missing_debs[*]} (not root or no apt-get; their tests will skip)"
    say "to install: sudo apt-get install --no-install-recommends ${missing_debs[*]}"
else
    say "installing Debian servers: ${missing_debs[*]}"
    # Keep maintainer scripts from starting the system services (nginx/apache2 would grab
    # port 80). policy-rc.d exiting 101 means "action forbidden" to invoke-rc.d.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt_install() {
        apt-get install -y -q --no-install-recommends "$@" >>"$LOG" 2>&1
    }
    failed=()
    if ! apt-get update >>"$LOG" 2>&1; then
        failed=("${missing_debs[@]}")
    elif ! apt_install "${missing_debs[@]}"; then
        # One unavailable package fails the batch: try them one by one.
        for pkg in "${missing_debs[@]}"; do
            apt_install "$pkg" || failed+=("$pkg")
        done
    fi
    if [ "$created_policy" -eq 1 ]; then
        rm -f "$policy"
        trap - EXIT
    fi
    if [ "${#failed[@]}" -eq 0 ]; then
        say "installed: ${missing_debs[*]}"
    else
        show_log_tail
        say "could not install: ${failed[*]}; continuing, their tests will skip"
    fi
    # Should a service have started anyway (no policy-rc.d honoured), stop it: the tests
    # run their own instances on random ports and do not want one on port 80.
    for svc in nginx apache2 lighttpd caddy; do
        if command -v service >/dev/null 2>&1 && [ -x "/etc/init.d/$svc" ]; then
            service "$svc" stop >>"$LOG" 2>&1 || true
        fi
    done
fi

# --- Python servers -------------------------------------------------------------------------
missing_py=()
for pair in "${PY_PKGS[@]}"; do
    pip_name="${pair%%:*}"
    mod="${pair#*:}"
    if ! "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$mod') is None)" \
        >/dev/null 2>&1; then
        missing_py+=("$pip_name")
    fi
done

if [ "${#missing_py[@]}" -eq 0 ]; then
    say "Python servers present"
else
    say "pip-installing: ${missing_py[*]}"
    if "$PYTHON" -m pip install -q --disable-pip-version-check "${missing_py[@]}" >>"$LOG" 2>&1; then
        say "installed: ${missing_py[*]}"
    else
        show_log_tail
        say "continuing; pip install failed for: ${missing_py[*]}"
    fi
fi

exit 0
