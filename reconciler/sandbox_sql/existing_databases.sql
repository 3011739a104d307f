-- Which of the given database names exist on this server.
SELECT datname
FROM pg_catalog.pg_database
WHERE datname = ANY(%(names)s)
ORDER BY datname
