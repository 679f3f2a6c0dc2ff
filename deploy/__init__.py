"""Deployment files and their offline checks (``python -m deploy.lint``); not packaged."""
