-- Hands the inspection's input (declared tables, filters to normalise,
-- expected slot names, the pglogical queries) to the statements after it in
-- the same transaction: a transaction-local setting, since DO takes no parameters.
SELECT set_config('reconcile.inspect_input', %(input)s, true)
