-- The compared columns of the given keys, only rows that pass, each row as a JSON
-- array of its values in the compared columns' order (no column names: they would
-- be most of the bytes of a narrow row; upsert.sql names them again). Each value is
-- as to_jsonb writes it, which the subscriber's jsonb_populate_record reads back.
SELECT ({values})::text
FROM (SELECT * FROM {table} WHERE {filter}) AS t
WHERE t.{key} = ANY (%(keys)s::uuid[])
ORDER BY t.{key}
