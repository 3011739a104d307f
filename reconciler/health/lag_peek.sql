-- Commit time of the oldest transaction of this database that the slot has
-- not confirmed, and its age on the provider's own clock (no clock skew).
-- Peeking (not getting) leaves even the copy where it was; decoding stops
-- after the first transaction (upto_nchanges = 1 is checked per record).
-- No row: nothing of this database is pending (the WAL is other databases').
SELECT c.committed_at,
       greatest(0, extract(epoch FROM clock_timestamp() - c.committed_at))::float8 AS lag_seconds
  FROM (SELECT substring(p.data FROM '\(at ([^)]+)\)$')::timestamptz AS committed_at
          FROM pg_logical_slot_peek_changes(%(probe)s, NULL, 1, 'include-timestamp', 'on') AS p
         WHERE left(p.data, 7) = 'COMMIT '
         LIMIT 1) AS c
