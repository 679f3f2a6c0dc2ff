"""Numbered SQL migrations, applied in order by ``whn.db.migrate`` and recorded in a table."""
