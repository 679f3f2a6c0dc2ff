"""The mail sink as a process of its own: ``python -m bench.sink DIR PORT``.

Runs until SIGTERM. Kept out of the benchmark's process so that parsing thousands of
messages never shares a GIL with the driver's stopwatch.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from whn.devstack.mailsink import MailSink


def main() -> None:
    directory, port = Path(sys.argv[1]), int(sys.argv[2])
    sink = MailSink(directory, port=port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sink.start()
    stop.wait()
    sink.stop()


if __name__ == "__main__":
    main()
