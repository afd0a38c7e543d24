-- Views. security_invoker: a view reads with the caller's rights, so RLS still applies.

create or replace view shopsync.store_sync_statistics with (security_invoker = true) as
select s.id as store_id,
       s.organization_id,
       s.platform,
       s.shop_key,
       s.status,
       s.sync_status,
       s.sync_started_at,
       s.sync_completed_at,
       s.last_sync_error,
       c.enabled as sync_enabled,
       c.frequency,
       c.next_sync_at,
       (select count(*) from shopsync.products p where p.store_id = s.id and p.deleted_at is null) as products,
       (select count(*) from shopsync.product_variants v where v.store_id = s.id and v.deleted_at is null) as variants,
       (select count(*) from shopsync.customers cu where cu.store_id = s.id and cu.deleted_at is null) as customers,
       (select count(*) from shopsync.orders o where o.store_id = s.id and o.deleted_at is null) as orders,
       (select count(*) from shopsync.jobs j where j.store_id = s.id and j.state = 'queued') as jobs_queued,
       (select count(*) from shopsync.jobs j where j.store_id = s.id and j.state = 'running') as jobs_running,
       (select count(*) from shopsync.jobs j where j.store_id = s.id and j.state = 'dead') as jobs_dead,
       (select max(r.finished_at) from shopsync.sync_runs r where r.store_id = s.id and r.status = 'succeeded')
         as last_successful_sync_at,
       (select count(*) from shopsync.sync_runs r where r.store_id = s.id and r.status = 'failed'
          and r.started_at > now() - interval '1 day') as failed_runs_24h
  from shopsync.stores s
  left join shopsync.store_sync_config c on c.store_id = s.id;
