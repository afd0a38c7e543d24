#!/usr/bin/env bash
# Installs what a fresh machine lacks for shopsync's local stack and tests:
# PostgreSQL 15 server binaries, pg_cron, and a project virtualenv with shopsync installed.
# Safe to run repeatedly: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_BIN=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)
PG_LIB=/usr/lib/postgresql/15/lib
PY=${PYTHON:-python3}
need_pkgs=()
[ -x "${PG_BIN:-/nonexistent}/postgres" ] || need_pkgs+=(postgresql-15)
[ -f "$PG_LIB/pg_cron.so" ] || need_pkgs+=(postgresql-15-cron)
command -v "$PY" >/dev/null 2>&1 || need_pkgs+=(python3)
# Debian's own python3 has no venv/ensurepip without this package
[ -x .venv/bin/python ] || "$PY" -c 'import ensurepip' >/dev/null 2>&1 || need_pkgs+=(python3-venv)

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "==> installing system packages: ${need_pkgs[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      echo "!!  not root and no passwordless sudo: install ${need_pkgs[*]} yourself" >&2
      need_pkgs=()
    fi
  fi
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # shopsync runs its own cluster: keep the Debian package from creating and starting one on 5432
    $SUDO mkdir -p /etc/postgresql-common
    grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
      echo 'create_main_cluster = false' | $SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" </dev/null >/dev/null
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.shopsync-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ sandboxes/pyproject.toml -nt "$stamp" ]; then
  echo "==> installing shopsync and its dependencies into .venv"
  # shopsync itself, and the platform sandboxes (a separate package: tests, benchmarks, make dev)
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]' -e ./sandboxes
  touch "$stamp"
fi
