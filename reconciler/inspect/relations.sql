-- Every declared table that exists: its oid, kind and replica identity, and
-- in a database without pglogical whether it holds a row (see has_rows).
-- %(names)s: declared "schema.table" names; %(quoted)s: the same names as
-- quoted identifiers, which to_regclass resolves without ever raising.
--
-- has_rows: asked only where a subscription may be created, since a COPY
-- onto rows already there fails on their keys and leaves the subscription
-- broken for good. Here: when the client asks (native engine) or pglogical
-- is absent; pglogical/has_rows.sql asks when a declared subscription is
-- missing. CASE runs query_to_xml (a query on a table named in data) only then.
SELECT d.name, c.oid, c.relkind::text, c.relreplident::text,
       CASE WHEN c.relkind IN ('r', 'p') AND (%(asked)s OR to_regclass('pglogical.subscription') IS NULL)
            THEN query_to_xml(format('SELECT true AS x FROM %%s LIMIT 1', c.oid::regclass),
                              false, true, '')::text <> ''
       END AS has_rows
  FROM unnest(%(names)s::text[], %(quoted)s::text[]) AS d(name, quoted)
  JOIN pg_class c ON c.oid = to_regclass(d.quoted)
