-- Insert missing rows and overwrite differing ones with the provider's values
-- (compared columns only; other columns keep their defaults or values).
-- RETURNING tells inserts (xmax = 0) from updates.
INSERT INTO {table} AS t ({columns})
SELECT {columns} FROM pg_catalog.jsonb_populate_recordset(NULL::{table}, %(rows)s::jsonb)
ON CONFLICT ({key}) {conflict}
RETURNING (t.xmax = 0) AS inserted
