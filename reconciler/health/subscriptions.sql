-- Each subscription this node holds and pglogical's own view of it:
-- replicating, initializing, down, disabled.
SELECT subscription_name::text AS subscription, status::text AS status
  FROM pglogical.show_subscription_status()
 ORDER BY 1
