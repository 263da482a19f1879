"""sessionwatch dashboard: a Textual TUI over :mod:`core`, and the ``sessionwatch`` CLI."""
