"""Entry points: the `guest-journey` command line, the dev server and the
operator commands. The top layer, beside `worker.py` (docs/architecture.md)."""
