-- Why a DELETE at this table could change rows of another table (or rows not
-- asked for): foreign keys that reference it (ON DELETE CASCADE / SET NULL /
-- SET DEFAULT change the referencing rows, which stay in their sets and would
-- replicate upstream; NO ACTION / RESTRICT would fail anyway), and enabled
-- user triggers on it (tgenabled 'D' is disabled, 'R' fires only for the
-- apply worker). Read under the SHARE ROW EXCLUSIVE lock, which CREATE
-- TRIGGER and a new foreign key to the table also need, so it stays true
-- until commit.
SELECT 'foreign key ' || c.conname::text || ' of ' || c.conrelid::regclass::text
FROM pg_catalog.pg_constraint AS c
WHERE c.contype = 'f' AND c.confrelid = pg_catalog.to_regclass(%(table)s)
UNION ALL
SELECT 'trigger ' || t.tgname::text
FROM pg_catalog.pg_trigger AS t
WHERE t.tgrelid = pg_catalog.to_regclass(%(table)s)
  AND NOT t.tgisinternal
  AND t.tgenabled IN ('O', 'A')
ORDER BY 1
