-- A read-only role for `reconcile plan` and `reconcile review` (e.g. in CI on
-- merge requests): it reads every catalog a plan needs and can change nothing
-- that outlives its session. Run as a superuser, once per server for the role
-- and once per node database for the grants, e.g.
--   psql -d district_a -v role=reconcile_review -f reconcile-review.sql
-- and give the role's password to the review job only (pgpass or PGPASSWORD).
--
-- What it can do: read pglogical's catalogs, the replication slots and the
-- server settings a plan checks; see whether the declared tables hold rows;
-- create TEMPORARY tables (the row-filter probe normalises each filter on a
-- temporary copy of its table, in a transaction that is always rolled back).
-- What it cannot do: write any table, create or drop replication objects,
-- replicate, read the server's files, or run programs.

SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec

-- Settings (shared_preload_libraries, wal_level, ...) and slot statistics.
GRANT pg_monitor TO :"role";
-- The server's system identifier: which nodes share a server or a database.
GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO :"role";

SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), :'role') \gexec
GRANT USAGE ON SCHEMA pglogical TO :"role";
-- pglogical 2.4 leaves its functions executable by PUBLIC (measured: a role
-- with nothing but USAGE on the schema got past the privilege check of
-- pglogical.drop_node, stopped only by drop_node's own checks). Every role
-- that manages pglogical (the tool's admin role, the replication role) is a
-- superuser, so revoking them from PUBLIC takes nothing from them.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pglogical FROM PUBLIC;
-- The two that only read, which plan and status call.
GRANT EXECUTE ON FUNCTION pglogical.pglogical_gen_slot_name(name, name, name) TO :"role";
GRANT EXECUTE ON FUNCTION pglogical.show_subscription_status(name) TO :"role";
GRANT SELECT ON ALL TABLES IN SCHEMA pglogical TO :"role";
-- Whether a declared table holds rows (a new subscription copies only into
-- empty tables): SELECT on the replicated tables' schemas. Narrow it to the
-- declared tables if you prefer; nothing else is read.
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', nspname, :'role')
  FROM pg_namespace
 WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pglogical') AND nspname NOT LIKE 'pg\_%'
\gexec
SELECT format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', nspname, :'role')
  FROM pg_namespace
 WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pglogical') AND nspname NOT LIKE 'pg\_%'
\gexec
