-- One table's membership in one publication: column list (NULL = all) and
-- the row filter as PostgreSQL's normalised text.
SELECT (SELECT array_agg(a.attname::text ORDER BY a.attname)
          FROM pg_attribute a
         WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs::smallint[])) AS columns,
       pg_get_expr(r.prqual, r.prrelid) AS row_filter
  FROM pg_publication_rel r
  JOIN pg_publication p ON p.oid = r.prpubid
 WHERE p.pubname = %(name)s AND r.prrelid = %(table)s::regclass
