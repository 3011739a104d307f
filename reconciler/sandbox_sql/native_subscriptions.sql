-- Native subscriptions held by one database (they block DROP DATABASE).
SELECT s.subname::text
  FROM pg_catalog.pg_subscription s
  JOIN pg_catalog.pg_database d ON d.oid = s.subdbid
 WHERE d.datname = current_database()
 ORDER BY 1
