-- Hands the probe (probe.sql) and the native engine's queries their input:
-- declared tables, filters to normalise, expected slot names. A
-- transaction-local setting, since DO takes no parameters.
SELECT set_config('reconcile.inspect_input', %(input)s, true)
