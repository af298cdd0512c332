"""Activities: registered actions called by name, run one at a time (sync) or concurrently (async)."""
