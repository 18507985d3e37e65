#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install what the tests need, lint, type-check, test.
# Servers from Debian (nginx, Apache, lighttpd, Caddy) are installed when running as root with
# apt-get; elsewhere the tests that need them are skipped with an install hint.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
echo "== installing range-streams with its test extra"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "Running pip as the 'root' user" || true
echo "== installing the real servers the tests run"
PYTHON="$PYTHON" bash scripts/install-servers.sh
if [ "${CI:-}" = "true" ]; then
    export RANGE_STREAMS_REQUIRE_SERVERS=1  # in CI a missing server is a failure, not a skip
fi
echo "== ruff"
"$PYTHON" -m ruff check src tests benchmarks
"$PYTHON" -m ruff format --check src tests benchmarks
echo "== mypy --strict"
"$PYTHON" -m mypy
echo "== pytest"
exec "$PYTHON" -m pytest "$@"
