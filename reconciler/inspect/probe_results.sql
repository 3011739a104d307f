-- What probe.sql left behind: normalised filters (one per input filter, in
-- order) and the pglogical catalogs (JSON null when the extension is absent).
SELECT current_setting('reconcile.inspect_filters') AS filters,
       current_setting('reconcile.inspect_pglogical') AS pglogical,
       -- The native engine's catalogs (JSON null unless engine: native).
       current_setting('reconcile.inspect_native') AS native
