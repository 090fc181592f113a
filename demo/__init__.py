"""The on-call demo: a scripted scenario against the local stack, through the real CLI."""
