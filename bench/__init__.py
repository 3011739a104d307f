"""`make bench`: reproducible figures for plan, apply, filtered bandwidth, end-to-end latency and verify."""
