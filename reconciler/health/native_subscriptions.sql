-- Native subscriptions of this database and their state in pglogical's words:
-- disabled, initializing (a table still copying), down (enabled, no apply
-- worker: the provider is unreachable or the worker keeps failing), replicating.
SELECT s.subname::text AS subscription,
       CASE WHEN NOT s.subenabled THEN 'disabled'
            WHEN EXISTS (SELECT FROM pg_subscription_rel r
                          WHERE r.srsubid = s.oid AND r.srsubstate <> 'r') THEN 'initializing'
            WHEN w.pid IS NULL THEN 'down'
            ELSE 'replicating'
       END AS status
  FROM pg_subscription s
  LEFT JOIN pg_stat_subscription w ON w.subid = s.oid AND w.relid IS NULL
 WHERE s.subdbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
 ORDER BY 1
