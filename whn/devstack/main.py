"""``whn-dev``: the whole system on this machine, in the foreground, until Ctrl-C.

Starts embedded PostgreSQL, the SMTP sink, the Temporal dev server with its Web UI and
a worker (see ``whn.devstack.stack``), prints where everything is and what to try next,
then watches the children. Ctrl-C or SIGTERM stops them in order and exits 0; a child
that dies on its own stops the rest and exits 1.

Configuration is the usual ``WHN_*`` environment (``whn.settings.Settings``); the
addresses in it are where the servers listen. ``WHN_UI_URL`` (or ``--ui-port``) sets
the Web UI's port; ``WHN_CODEC_PORT`` the codec server's (see ``whn.devstack.stack``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence

from whn.codec import CodecKeyError
from whn.devstack.postgres import EmbeddedPostgresError
from whn.devstack.stack import DevStack
from whn.devstack.temporal_server import TemporalDevServerError
from whn.settings import settings_or_exit

log = logging.getLogger("whn.devstack")

READY_LINE = "whn-dev ready"
# Never echoed in the banner's exports: keys and tokens stay out of terminals and logs.
_SECRET = ("WHN_CODEC_KEYS", "WHN_CODEC_TOKEN")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``whn-dev`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # aiosmtpd logs every SMTP conversation at INFO; the sink logs each message it keeps.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    settings = settings_or_exit("whn-dev")
    if args.ui_port is not None:
        settings = settings.model_copy(update={"ui_url": f"http://127.0.0.1:{args.ui_port}"})
    stack = DevStack(settings, worker=not args.no_worker)
    sys.exit(asyncio.run(_run(stack)))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="whn-dev", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ui-port", type=int, help="port of the Temporal Web UI")
    parser.add_argument("--no-worker", action="store_true", help="start the servers only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


async def _run(stack: DevStack) -> int:
    """Start, report, watch; always stop what was started. The exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, sig, stop)
    try:
        starting = asyncio.create_task(stack.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return 0
        stopping.cancel()
        starting.result()
        print(_banner(stack), flush=True)
        return await _watch(stack, stop)
    except (EmbeddedPostgresError, TemporalDevServerError, OSError, CodecKeyError) as err:
        log.error("could not start: %s", err)
        return 1
    except Exception:
        log.exception("could not start")
        return 1
    finally:
        log.info("stopping")
        await stack.stop()
        log.info("stopped")


def _on_signal(sig: signal.Signals, stop: asyncio.Event) -> None:
    if stop.is_set():
        log.info("%s: already stopping", sig.name)
    else:
        log.info("%s: stopping everything", sig.name)
    stop.set()


async def _watch(stack: DevStack, stop: asyncio.Event) -> int:
    """Wait for a stop signal (0) or a child that exits by itself (1)."""
    while not stop.is_set():
        if (exited := stack.exited()) is not None:
            name, code = exited
            log.error("%s exited unexpectedly (code %d); stopping the rest", name, code)
            return 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=0.5)
    return 0


def _banner(stack: DevStack) -> str:
    env = stack.env()
    # Other WHN_ settings (timings, say) apply to the worker too; repeat them for the CLIs.
    env |= {k: v for k, v in sorted(os.environ.items()) if k.startswith("WHN_") and k not in env}
    exports = "\n".join(
        f"  export {k}={shlex.quote(v)}" for k, v in env.items() if k not in _SECRET
    )
    if any(k in env for k in _SECRET):
        exports += "\n  (and " + ", ".join(k for k in _SECRET if k in env) + " as you set them)"
    web = f"http://127.0.0.1:{stack.web_port}"
    if stack.intake_key:  # the contract asks for it: a development key, for curl
        exports += f"\n  export WHN_WEB_URL={web}\n  export WHN_INTAKE_KEY={stack.intake_key}"
    activate = ""
    if sys.prefix != sys.base_prefix:
        activate = f"  source {shlex.quote(os.path.join(sys.prefix, 'bin', 'activate'))}\n"
    mail = stack.mail
    return f"""
{READY_LINE}

  Temporal Web UI  {stack.temporal.ui_url}
  Temporal         {stack.temporal.address}  (namespace {stack.settings.temporal_namespace})
  PostgreSQL       {stack.settings.database_url}
  Mail (SMTP)      {mail.host}:{mail.port}, kept in {mail.directory}
{_codec_lines(stack)}  Logs             {stack.logs_dir}
  Worker           {"running" if stack.worker else "not running"}
  whn-web          {web}/api/v1 (intake API; docs {web}/api/docs)
  Track my report  {web}/track (the reporter's page: receipt code + email, or the link in a letter)

In another shell, point the tools at this stack:

{activate}{exports}

Then try:

  whn-intake submit examples/ordinary.json
  whn-admin list
  whn-admin show REF --as handler-1     (REF: the receipt code printed by submit)
  curl -H "Authorization: Bearer $WHN_INTAKE_KEY" -H 'Content-Type: application/json' \\
       --data @examples/emergency.json $WHN_WEB_URL/api/v1/reports

Ctrl-C stops everything; the data stays in {stack.data_dir} for the next run.
"""


def _codec_lines(stack: DevStack) -> str:
    s = stack.settings
    keys = f"key file {s.codec_key_file}" if s.codec_key_file else "keys from WHN_CODEC_KEYS"
    lines = f"  Payloads         encrypted (AES-256-GCM), {keys}\n"
    if stack.codec_server is not None:
        token = f"token in {stack.token_file}" if stack.token_file else "token from WHN_CODEC_TOKEN"
        lines += (
            f"  Codec server     {stack.codec_server.url} (the UI decodes through it;"
            f" other callers need the bearer {token})\n"
        )
    return lines


if __name__ == "__main__":
    main()
