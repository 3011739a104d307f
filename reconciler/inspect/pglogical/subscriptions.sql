-- Subscriptions held by this node. pglogical stores forward_origins '{}' as
-- NULL: read it back as an empty array.
SELECT coalesce(jsonb_agg(jsonb_build_object(
           'name', s.sub_name::text,
           'provider_node', n.node_name::text,
           'provider_dsn', i.if_dsn,
           'replication_sets', to_jsonb(coalesce(s.sub_replication_sets, '{}')),
           'forward_origins', to_jsonb(coalesce(s.sub_forward_origins, '{}')),
           'enabled', s.sub_enabled,
           'slot_name', s.sub_slot_name::text,
           -- Initial sync finished ('r' on the subscription-level row): only
           -- then must the provider hold its slot (a new one creates it later).
           'synced', EXISTS (
               SELECT FROM pglogical.local_sync_status y
                WHERE y.sync_subid = s.sub_id AND y.sync_nspname IS NULL AND y.sync_status = 'r'))
           ORDER BY s.sub_name), '[]')
  FROM pglogical.subscription s
  JOIN pglogical.node n ON n.node_id = s.sub_origin
  JOIN pglogical.node_interface i ON i.if_id = s.sub_origin_if
