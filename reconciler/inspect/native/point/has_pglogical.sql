-- Whether this database can still hold pglogical subscriptions (engine switch).
SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'pglogical') AS present
