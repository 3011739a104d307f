-- Whether this database is a pglogical node yet: show_subscription_status()
-- raises 'current database is not configured as pglogical node' otherwise.
SELECT EXISTS (SELECT FROM pglogical.local_node) AS has_node
