"""Scripts that make files the repository commits (run with ``python -m tools.<name>``)."""
