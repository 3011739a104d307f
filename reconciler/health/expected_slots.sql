-- The slot name each declared edge fed by this provider uses, as pglogical
-- itself names it (pgl_<subscriber db>_<provider node>_<subscription>, each
-- part shortened). Only runs when the extension exists.
SELECT e.subscription::text AS subscription,
       pglogical.pglogical_gen_slot_name(e.db, e.provider, e.subscription)::text AS slot
  FROM jsonb_to_recordset(%(expected)s::jsonb) AS e(db name, provider name, subscription name)
 ORDER BY 1
