-- pglogical slots in this database that no declared subscription uses.
-- Expected names come from pglogical itself (pgl_<subscriber db>_<provider
-- node>_<subscription>, each part shortened). A table sync in progress holds a
-- temporary '<slot>_%08x' slot (pglogical_sync.c): not an orphan.
WITH expected AS (
    SELECT pglogical.pglogical_gen_slot_name(e.db, e.provider, e.subscription)::text AS slot
      FROM jsonb_to_recordset(current_setting('reconcile.inspect_input')::jsonb -> 'expected_slots')
           AS e(db name, provider name, subscription name)
)
SELECT coalesce(jsonb_agg(r.slot_name::text ORDER BY r.slot_name), '[]')
  FROM pg_replication_slots r
 WHERE r.plugin = 'pglogical_output'
   AND r.database = current_database()
   AND NOT EXISTS (
       SELECT FROM expected x
        WHERE r.slot_name::text = x.slot
           OR (left(r.slot_name::text, length(x.slot) + 1) = x.slot || '_'
               AND substr(r.slot_name::text, length(x.slot) + 2) ~ '^[0-9a-f]{8}$'))
