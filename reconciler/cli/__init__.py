"""The `reconcile` command line: one module per command; the only place that prints or picks an exit code."""

from __future__ import annotations

from reconciler.cli.app import app, main

__all__ = ["app", "main"]
