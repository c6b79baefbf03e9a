"""The `dialer` command line, an edge: commands call the core, or read the store's reports."""

from dialer.cli.main import main

__all__ = ["main"]
