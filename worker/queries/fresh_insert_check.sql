-- Before COPYing a first full sync's batch straight into its table: the job is still held (else this
-- fails with 55000), the store's organization (which every row must carry), and whether the store has
-- redacted rows (then every row goes through the guarded merge, which keeps them out).
select shopsync_private.assert_job_held(%(job_id)s, %(worker)s),
       shopsync_private.lock_store_writes(%(store_id)s),     -- ordered with redactions (42_synced_writes.sql)
       (select s.organization_id::text from shopsync.stores s where s.id = %(store_id)s) as org,
       exists (select 1 from shopsync_private.redacted_rows r where r.store_id = %(store_id)s) as redactions
