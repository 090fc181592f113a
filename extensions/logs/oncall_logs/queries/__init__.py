"""Saved queries shipped with oncall-logs (package data; listed through the oncall.logs.queries entry point)."""
