-- Columns of shopsync.<table> and their types (the direct path adapts JSON values by type).
select a.attname as name, format_type(a.atttypid, a.atttypmod) as type
  from pg_attribute a
  join pg_class c on c.oid = a.attrelid
  join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'shopsync' and c.relname = %(table)s and c.relkind = 'r' and a.attnum > 0 and not a.attisdropped
 order by a.attnum
