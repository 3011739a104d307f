-- Replica identity of every declared table: default, full, nothing, or
-- index(<columns in index order>). PostgreSQL refuses UPDATE/DELETE on a
-- table whose publication filter reads a column outside it.
SELECT coalesce(jsonb_object_agg(d.name,
           CASE c.relreplident
               WHEN 'd' THEN 'default'
               WHEN 'f' THEN 'full'
               WHEN 'n' THEN 'nothing'
               ELSE 'index(' || coalesce((
                   SELECT string_agg(a.attname::text, ',' ORDER BY k.position)
                     FROM pg_index i
                     CROSS JOIN LATERAL unnest(i.indkey::smallint[]) WITH ORDINALITY AS k(attnum, position)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                    WHERE i.indrelid = c.oid AND i.indisreplident), '') || ')'
           END) FILTER (WHERE c.oid IS NOT NULL), '{}')
  FROM jsonb_to_recordset(current_setting('reconcile.inspect_input')::jsonb -> 'tables')
       AS d(name text, schema text, "table" text)
  JOIN pg_namespace n ON n.nspname = d.schema
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = d."table" AND c.relkind IN ('r', 'p')
