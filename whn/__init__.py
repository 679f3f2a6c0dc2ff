"""Infrastructure shared by the worker, the CLIs and the dev stack: settings, clients, database."""
