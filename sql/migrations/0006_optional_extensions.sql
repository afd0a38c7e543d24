-- pg_cron where the server offers it. On Supabase enable it from the dashboard first (it must be
-- preloaded); elsewhere it needs shared_preload_libraries and cron.database_name = this database.
-- Without it the worker runs the same schedules itself.
do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    return;
  end if;
  if not exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    raise notice 'pg_cron is not installed: skipped (the worker will run schedules)';
    return;
  end if;
  begin
    create extension pg_cron;
  exception when others then
    raise notice 'pg_cron not usable in this database (%): skipped (the worker will run schedules)', sqlerrm;
  end;
end
$$;
