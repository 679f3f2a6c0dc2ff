"""``whn-intake``: how intake systems start cases and pass on reporters' replies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from starter import intake
from starter.cli import JsonOpt, client_for, emit, main_of, run, run_with_client
from starter.errors import RejectedError
from whn.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
RefArg = Annotated[str, typer.Argument(help="receipt code or crime reference")]


@app.command()
def submit(
    file: Annotated[str, typer.Argument(help="report JSON file, or - for stdin")],
    as_json: JsonOpt = False,
) -> None:
    """Start the case for a report and print its receipt code."""

    async def program(settings: Settings) -> intake.Submitted:
        try:
            data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()  # noqa: ASYNC240
        except OSError as err:
            raise RejectedError(f"cannot read {file}: {err.strerror}") from None
        if len(data) > intake.MAX_REPORT_BYTES:
            raise RejectedError(
                f"report is {len(data)} bytes; the limit is {intake.MAX_REPORT_BYTES}"
            )
        report = intake.parse_report(data)
        client = await client_for(settings)
        return await intake.submit(
            client, report, task_queue=settings.task_queue, timings=settings.timings()
        )

    result = run(program, prog="whn-intake")
    note = " (already submitted: same case)" if result.duplicate else ""
    emit(as_json, result.model_dump(), f"{result.receipt_code}{note}")


@app.command()
def details(
    ref: RefArg,
    text: Annotated[str, typer.Option("--text", help="the reporter's reply")],
    as_json: JsonOpt = False,
) -> None:
    """Pass on the reporter's reply to a request for details."""
    workflow_id = run_with_client(
        lambda client, settings: intake.details(
            client, ref, text, database_url=settings.database_url
        ),
        prog="whn-intake",
    )
    emit(
        as_json,
        {"ref": ref, "workflow_id": workflow_id, "delivered": True},
        f"reply passed on to {ref}",
    )


@app.command()
def status(ref: RefArg, as_json: JsonOpt = False) -> None:
    """Where a case is: stage and references (no personal data), as the HTTP API gives it."""
    found = run_with_client(
        lambda client, settings: intake.status(client, ref, database_url=settings.database_url),
        prog="whn-intake",
    )
    refs = [r for r in (found.crime_reference, found.investigation_reference) if r]
    text = f"{found.receipt_code} [{found.stage.value}]" + "".join(f" {r}" for r in refs)
    emit(as_json, found.model_dump(mode="json"), text + (" (closed)" if found.closed else ""))


@app.command()
def schema() -> None:
    """Print the report's JSON Schema."""
    typer.echo(intake.schema())


def main() -> None:
    main_of(app)


if __name__ == "__main__":
    main()
