"""Screens pushed over the main view: confirmation, session detail, help."""
