-- pg_cron schedules, where pg_cron is installed in this database. They only run SQL: the same
-- maintenance functions the worker runs itself when pg_cron is absent. cron.schedule() with a job
-- name updates the existing job, so re-applying this file is idempotent.
do $$
begin
  if not exists (select 1 from pg_extension where extname = 'pg_cron') then
    raise notice 'pg_cron not installed here: schedules skipped (the worker runs them)';
    return;
  end if;
  perform cron.schedule('shopsync-enqueue-due-syncs', '* * * * *',
                        $c$select shopsync.run_maintenance('enqueue_due_syncs', 30)$c$);
  perform cron.schedule('shopsync-reap-expired-leases', '* * * * *',
                        $c$select shopsync.run_maintenance('reap_expired_leases', 30)$c$);
  perform cron.schedule('shopsync-prune-history', '17 3 * * *',
                        $c$select shopsync.run_maintenance('prune_history', 3600)$c$);
  perform cron.schedule('shopsync-notify', '* * * * *',     -- daily summaries; missed notification wake-ups
                        $c$select shopsync.run_maintenance('notify', 30)$c$);
end
$$;
