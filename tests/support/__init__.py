"""Helpers shared by every test: running the CLI, starting real servers."""
