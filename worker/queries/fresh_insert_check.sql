-- Before COPYing a first full sync's batch straight into its table: the job is still held (else this
-- fails with 55000) and the store's organization, which every row must carry.
select shopsync_private.assert_job_held(%(job_id)s, %(worker)s),
       (select s.organization_id::text from shopsync.stores s where s.id = %(store_id)s) as org
