-- Insert missing rows and overwrite differing ones with the provider's values
-- (compared columns only; other columns keep their defaults or values). Each
-- row arrives as a JSON array in the compared columns' order (fetch.sql):
-- {record} names its values again, and jsonb_populate_record types them.
-- RETURNING tells inserts (xmax = 0) from updates.
INSERT INTO {table} AS t ({columns})
SELECT {selected}
FROM pg_catalog.jsonb_array_elements(%(rows)s::jsonb) AS reconcile_row (v),
     LATERAL pg_catalog.jsonb_populate_record(NULL::{table}, {record}) AS r
ON CONFLICT ({key}) {conflict}
RETURNING (t.xmax = 0) AS inserted
