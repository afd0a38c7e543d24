-- The COPY path of write_synced: merge the rows staged in pg_temp.shopsync_stage into shopsync.<table>
-- (the same guarded merge the JSON path uses, sql/functions/42_synced_writes.sql).
select shopsync_private.merge_staged(%(table)s, 'shopsync_stage', %(job_id)s, %(worker)s, %(keep)s) as r
