-- Row text must be byte-identical on every node for equal values: fix every
-- setting that changes how a type prints (timestamptz follows TimeZone,
-- dates DateStyle, floats extra_float_digits, bytea bytea_output).
SELECT pg_catalog.set_config('TimeZone', 'UTC', false),
       pg_catalog.set_config('DateStyle', 'ISO, YMD', false),
       pg_catalog.set_config('IntervalStyle', 'postgres', false),
       pg_catalog.set_config('extra_float_digits', '1', false),
       pg_catalog.set_config('bytea_output', 'hex', false),
       pg_catalog.set_config('statement_timeout', %(statement_timeout)s, false),
       pg_catalog.set_config('default_transaction_read_only', %(read_only)s, false)
