-- relations.sql's has_rows for a database with pglogical: asked only when
-- one of the subscriptions declared on this node is missing (it will be
-- created). Only tables are asked (a view or materialized view of that name
-- is reported as a missing table by preflight, never queried).
SELECT d.name,
       query_to_xml(format('SELECT true AS x FROM %%s LIMIT 1', d.quoted), false, true, '')::text <> ''
  FROM unnest(%(names)s::text[], %(quoted)s::text[]) AS d(name, quoted)
 WHERE (SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(d.quoted)) IN ('r', 'p')
   AND EXISTS (SELECT FROM unnest(%(subscriptions)s::text[]) AS w(name)
                WHERE w.name NOT IN (SELECT s.sub_name::text FROM pglogical.subscription s))
