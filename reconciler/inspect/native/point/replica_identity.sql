-- A table's replica identity: its kind (default, full, nothing, index) and,
-- for an index, the index's columns in index order.
SELECT CASE c.relreplident
           WHEN 'd' THEN 'default'
           WHEN 'f' THEN 'full'
           WHEN 'n' THEN 'nothing'
           ELSE 'index'
       END AS kind,
       (SELECT array_agg(a.attname::text ORDER BY k.position)
          FROM pg_index i
          CROSS JOIN LATERAL unnest(i.indkey::smallint[]) WITH ORDINALITY AS k(attnum, position)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE i.indrelid = c.oid AND i.indisreplident) AS columns
  FROM pg_class c
 WHERE c.oid = %(table)s::regclass
