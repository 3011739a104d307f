-- Native subscriptions of this database (pg_subscription is shared by the
-- whole server: keep this database's). subconninfo may hold a password if
-- someone wrote one by hand: it only ever leaves the model redacted.
-- synced: every table of the subscription finished its initial copy ('r').
SELECT coalesce(jsonb_agg(jsonb_build_object(
           'name', s.subname::text,
           'conninfo', s.subconninfo,
           'publications', to_jsonb(s.subpublications),
           'enabled', s.subenabled,
           'slot_name', s.subslotname::text,
           'synced', NOT EXISTS (
               SELECT FROM pg_subscription_rel r WHERE r.srsubid = s.oid AND r.srsubstate <> 'r'))
           ORDER BY s.subname), '[]')
  FROM pg_subscription s
 WHERE s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
