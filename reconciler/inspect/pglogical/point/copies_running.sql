-- This node's enabled subscriptions whose initial copy (of the whole set or
-- of one table) has not finished: rows pglogical is still writing here, under
-- the subscription's replication origin, that a subscriber of this node would
-- receive as inserts (forward_origins {all}) once its slot exists.
SELECT DISTINCT s.sub_name
FROM pglogical.subscription s
JOIN pglogical.local_sync_status y ON y.sync_subid = s.sub_id
WHERE s.sub_enabled AND y.sync_status <> 'r'
ORDER BY s.sub_name
