#!/usr/bin/env bash
# Install what notepipe needs on a fresh Debian/Ubuntu machine, idempotently:
# redis-server, PostgreSQL, PgBouncer (the stack's pooler) and Chromium (report rendering) from the distribution,
# then a virtualenv in .venv with the project and its dev extra (which includes the
# harness extra: pytest, testcontainers, hypothesis, locust, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=()
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || packages+=(postgresql)
command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || packages+=(pgbouncer)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
if [ "${#packages[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${packages[*]} (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
echo "bootstrap: ready (.venv, redis-server $(redis-server --version | awk '{print $3}'), $(ls -d /usr/lib/postgresql/*/ | tail -1))"
