-- Disable every pglogical subscription of this database and stop its apply worker now
-- (before any drop: drop_subscription waits for the worker while holding locks the
-- worker may be waiting for). Not inside a transaction block: `immediate` refuses it.
SELECT pglogical.alter_subscription_disable(subscription_name := sub_name, immediate := true)
FROM pglogical.subscription
ORDER BY sub_name
