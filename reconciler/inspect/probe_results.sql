-- What probe.sql left behind: one normalised filter (or error) per input
-- filter, in order.
SELECT current_setting('reconcile.inspect_filters')
