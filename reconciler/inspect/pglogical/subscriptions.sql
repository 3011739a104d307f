-- Subscriptions held by this node; their provider's name and DSN come from
-- node.sql (sub_origin, sub_origin_if). pglogical stores forward_origins '{}'
-- as NULL (the client reads it as empty). synced: the subscription-level
-- sync row (no table named) says 'r': the initial sync finished, and only
-- then must the provider hold the slot. tables: every table the subscription
-- has a sync row for, in any state; pglogical skips a queued table sync for
-- such a table, so one re-added to a set is not copied again.
SELECT s.sub_name::text, s.sub_origin, s.sub_origin_if,
       s.sub_replication_sets::text[], s.sub_forward_origins::text[],
       s.sub_enabled, s.sub_slot_name::text,
       s.sub_id IN (SELECT y.sync_subid FROM pglogical.local_sync_status y
                     WHERE y.sync_nspname IS NULL AND y.sync_status = 'r'),
       ARRAY(SELECT t.sync_nspname::text || '.' || t.sync_relname::text
               FROM pglogical.local_sync_status t
              WHERE t.sync_subid = s.sub_id AND t.sync_nspname IS NOT NULL)
  FROM pglogical.subscription s
