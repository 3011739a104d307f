-- has_rows.sql for a database with pglogical: asked only when one of the
-- subscriptions declared on this node is missing (it will be created).
SELECT d.name, query_to_xml(format('SELECT true AS x FROM %%s LIMIT 1', c.oid::regclass),
                            false, true, '')::text <> ''
  FROM unnest(%(names)s::text[], %(quoted)s::text[]) AS d(name, quoted)
  JOIN pg_class c ON c.oid = to_regclass(d.quoted)
 WHERE c.relkind IN ('r', 'p')
   AND EXISTS (SELECT FROM unnest(%(subscriptions)s::text[]) AS w(name)
                WHERE w.name NOT IN (SELECT s.sub_name::text FROM pglogical.subscription s))
