-- Per bucket inside each asked range: row count and XOR of a 64-bit slice of
-- each row's md5. A bucket is the first r.width characters of the key's
-- text (the caller counts the dashes of the 8-4-4-4-12 form). Ranges are
-- disjoint key intervals, so the btree on the key serves them and no row
-- counts twice. OFFSET 0 keeps the per-row hashing below the aggregate, so
-- only (bucket, hash) pairs are grouped, never whole rows (no sort spills).
-- Plain `unnest`: the multi-argument form is FROM-clause syntax, not a pg_catalog function.
SELECT s.bucket, pg_catalog.count(*) AS n, pg_catalog.bit_xor(s.h) AS x
FROM (SELECT pg_catalog.left(t.{key}::text, r.width) AS bucket,
             ('x' || pg_catalog.left(pg_catalog.md5(ROW({columns})::text), 16))::bit(64)::bigint AS h
      FROM unnest(%(lo)s::uuid[], %(hi)s::uuid[], %(width)s::int[]) AS r (lo, hi, width)
      JOIN (SELECT * FROM {table} WHERE {filter}) AS t ON t.{key} BETWEEN r.lo AND r.hi
      OFFSET 0) AS s
GROUP BY 1
ORDER BY 1
