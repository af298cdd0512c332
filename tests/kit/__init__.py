"""The test kit: what the conftest files hand to tests as fixtures (processes they start and always stop, the
CLI, waiting, PostgreSQL, a browser). Test modules import from a conftest only, never from here nor from each
other."""
