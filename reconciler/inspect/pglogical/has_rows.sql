-- relations.sql's has_rows for a database with pglogical: asked only when
-- one of the subscriptions declared on this node is missing (it will be
-- created). pglogical.subscription is already open (subscriptions.sql), and
-- to_regclass keeps query_to_xml off a table that does not exist.
SELECT d.name,
       query_to_xml(format('SELECT true AS x FROM %%s LIMIT 1', d.quoted), false, true, '')::text <> ''
  FROM unnest(%(names)s::text[], %(quoted)s::text[]) AS d(name, quoted)
 WHERE to_regclass(d.quoted) IS NOT NULL
   AND EXISTS (SELECT FROM unnest(%(subscriptions)s::text[]) AS w(name)
                WHERE w.name NOT IN (SELECT s.sub_name::text FROM pglogical.subscription s))
