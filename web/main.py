"""``whn-web``: serve the HTTP edge with uvicorn until SIGTERM or Ctrl-C.

Listens on ``WHN_WEB_HOST``:``WHN_WEB_PORT`` (``127.0.0.1:8000``). Without a payload key
it refuses to start (one line, exit 1), as every client does. On SIGTERM it stops
accepting, lets requests in flight finish (up to 20 s), then closes its pool.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

import uvicorn

from whn.codec import CodecKeyError
from whn.settings import settings_or_exit
from whn.telemetry import setup_tracing, shutdown_tracing

GRACE_SECONDS = 20


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``whn-web`` console script."""
    parser = argparse.ArgumentParser(prog="whn-web", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help="address to listen on (WHN_WEB_HOST)")
    parser.add_argument("--port", type=int, help="port (WHN_WEB_PORT)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings_or_exit("whn-web")
    from web.app import create_app

    try:
        app = create_app(settings)
    except CodecKeyError as err:
        print(f"whn-web: {err}", file=sys.stderr)
        sys.exit(1)
    setup_tracing(settings, service_name="whn-web")
    config = uvicorn.Config(
        app,
        host=args.host or settings.web_host,
        port=args.port if args.port is not None else settings.web_port,
        log_config=None,  # ours (above); uvicorn's own access log is off: web.middleware's
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=GRACE_SECONDS,
        lifespan="on",
        # WHN_EVENT_LOOP, as the worker: never uvicorn's "auto", which takes uvloop
        # whenever it is installed.
        loop=settings.event_loop,
    )
    server = uvicorn.Server(config)
    # uvicorn hands a SIGTERM it handled back to the handler it found: a no-op one here,
    # so a graceful stop exits 0 below rather than dying of the signal afterwards.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    code = 0 if server.started else 1
    shutdown_tracing()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # As the CLIs and the worker: skip finalisation, which the Temporal runtime's
    # threads can crash (starter.cli.main_of).
    os._exit(code)


if __name__ == "__main__":
    main()
