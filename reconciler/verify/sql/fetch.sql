-- The compared columns of the given keys, as JSON text (types travel as the
-- subscriber's jsonb_populate_recordset reads them back), only rows that pass.
SELECT pg_catalog.to_jsonb(s)::text
FROM (SELECT {columns}
      FROM (SELECT * FROM {table} WHERE {filter}) AS t
      WHERE t.{key} = ANY (%(keys)s::uuid[])
      ORDER BY t.{key}) AS s
