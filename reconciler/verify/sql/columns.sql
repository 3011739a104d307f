-- The table's live columns, whether each is in the primary key, and its type.
-- No rows: the table does not exist on this node.
SELECT a.attname::text AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       COALESCE(a.attnum = ANY (i.indkey::int2[]), false) AS is_key
FROM pg_catalog.pg_attribute AS a
LEFT JOIN pg_catalog.pg_index AS i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = pg_catalog.to_regclass(%(table)s)
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attnum
