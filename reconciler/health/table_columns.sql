-- Columns of the declared tables as this node has them (name and type as
-- format_type prints it), in column order: a provider that sends a column
-- its subscriber lacks breaks the link ("unknown column name").
SELECT format('%%s.%%s', n.nspname, c.relname) AS table_name,
       a.attname::text AS column_name,
       format_type(a.atttypid, a.atttypmod) AS column_type
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.oid IN (SELECT to_regclass(unnest(%(quoted)s::text[])))
 ORDER BY 1, a.attnum
