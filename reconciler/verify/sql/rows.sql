-- Key and row hash of every row inside the asked ranges (the small ones).
SELECT t.{key}::text AS key,
       pg_catalog.left(pg_catalog.md5(ROW({columns})::text), 16) AS h
FROM unnest(%(lo)s::uuid[], %(hi)s::uuid[]) AS r (lo, hi)
JOIN (SELECT * FROM {table} WHERE {filter}) AS t ON t.{key} BETWEEN r.lo AND r.hi
ORDER BY 1
