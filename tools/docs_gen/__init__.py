"""Generators of the docs pages that must not drift: desired-state and command reference, figures, causes."""
