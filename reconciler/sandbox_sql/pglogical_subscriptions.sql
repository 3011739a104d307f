-- Subscriptions held by this database's pglogical node, if pglogical is installed.
SELECT sub_name
FROM pglogical.subscription
ORDER BY sub_name
