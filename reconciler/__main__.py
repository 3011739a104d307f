"""`python -m reconciler` runs the `reconcile` command line."""

from reconciler.cli import main

main()
