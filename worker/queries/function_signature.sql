-- Input arguments (names and types) of shopsync.<name>, and whether it returns a set.
select coalesce(array_agg(a.name order by a.ord) filter (where a.mode in ('i', 'b', 'v')), '{}') as arg_names,
       coalesce(array_agg(format_type(a.type, null) order by a.ord) filter (where a.mode in ('i', 'b', 'v')), '{}')
         as arg_types,
       p.proretset as returns_set
  from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
  left join lateral unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargnames,
                           coalesce(p.proargmodes, array_fill('i'::"char", array[p.pronargs])))
       with ordinality as a(type, name, mode, ord) on true
 where n.nspname = 'shopsync' and p.proname = %(name)s and p.prokind = 'f'
 group by p.oid, p.proretset
