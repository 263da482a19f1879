"""Thin widgets: they render what the model and the messages give them."""
