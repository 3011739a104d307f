"""Row-level verify and repair: what each subscriber should hold versus what it holds.

Flow: ``targets`` (pure: which tables, filters and columns to compare per
subscriber) -> ``compare`` (pure descent over key-range hashes, talking to
``Side`` objects) with ``node`` (live sides: SQL on one node, bytes counted)
-> ``repair`` (batched writes on the subscriber) -> ``run`` (all subscribers,
bottom-up) -> ``render`` (text and JSON).
"""
