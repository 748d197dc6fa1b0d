"""``reindex-pipeline``: run the embedded stack and the project's chores from a terminal.

Errors are printed as one line (``error: ...``) with exit code 1, never as a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from reindex_pipeline.domain import queue_rules
from reindex_pipeline.domain.ids import not_uuids
from reindex_pipeline.llm.calls import Usage
from reindex_pipeline.settings import ENV_VARS, Settings

console = Console()
err = Console(stderr=True)


class _OneLineErrors(TyperGroup):
    """Usage errors (a bad option value, an unknown verb) as one ``error:`` line too, not a framed panel."""

    def main(
        self,
        args: Any = None,
        prog_name: Any = None,
        complete_var: Any = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            err.print("error: aborted", highlight=False)
            sys.exit(1)
        except Exception as exc:
            # Typer's own (vendored) click exceptions: known by what they offer, not by a private import.
            if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":  # the bare command: its help, not an error
                console.print(exc.format_message(), highlight=False, markup=False)
                sys.exit(0)
            ctx = getattr(exc, "ctx", None)
            verb = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
            message = " ".join(exc.format_message().split())
            err.print(
                f"error: {message} (see `{_cli_name()}{verb} --help`)", soft_wrap=True, highlight=False, markup=False
            )
            sys.exit(exc.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    rich_markup_mode=None,  # plain click help: no framed panels, no "<bool>" after flags
    add_completion=False,
    no_args_is_help=True,
    help="Rebuild a document app's derived indexes with Dagster.",
)


def _settings() -> Settings:
    return Settings.from_env(os.environ)


def _cli_name() -> str:
    """How the user runs this CLI (``./dev`` sets REINDEX_CLI), for the commands it suggests."""
    return os.environ.get("REINDEX_CLI", "reindex-pipeline")


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one clear line and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import psycopg

        from reindex_pipeline.stack.supervisor import StackError

        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):  # already an exit code (click's Exit is a RuntimeError)
            raise
        except (StackError, ValueError, RuntimeError, PermissionError, psycopg.Error) as exc:
            message = str(exc).strip() or repr(exc)
            err.print(f"[red]error:[/red] {message.splitlines()[0]}", soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded Postgres of the running stack."""
    from reindex_pipeline.stack.supervisor import StackState

    if settings.database_url:
        return settings.database_url
    state = StackState.read(settings.state_dir / "stack.json")
    if state is None or "DATABASE_URL" not in state.environment:
        raise RuntimeError(
            f"no database: set DATABASE_URL, or start the stack first (`{_cli_name()} up`) in {settings.state_dir}"
        )
    return state.environment["DATABASE_URL"]


@app.command()
@friendly_errors
def up(
    dagster: Annotated[bool, typer.Option(help="Run Dagster (webserver and daemon).")] = True,
    demo: Annotated[bool, typer.Option(help="Load the demo corpus into an empty database.")] = True,
    documents: Annotated[int, typer.Option(metavar="N", help="Demo corpus size.")] = 60,
    seed: Annotated[int, typer.Option(metavar="N", help="Demo corpus seed.")] = 7,
    port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Dagster UI port (default DAGSTER_PORT or 3000).")
    ] = None,
) -> None:
    """Start the embedded stack, migrate, load the demo corpus, run Dagster; Ctrl-C stops it all."""
    from reindex_pipeline.db import migrate
    from reindex_pipeline.demo.loader import is_empty, load_demo_corpus
    from reindex_pipeline.stack.supervisor import Stack

    settings = _settings()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    stack = Stack(settings, notify=lambda m: console.print(f"[yellow]{m}[/yellow]"))
    with console.status("Starting the embedded services ..."):
        state = stack.start()  # cleans up after itself if it fails
    try:
        _print_services(state.services, settings)
        url = state.environment["DATABASE_URL"]
        with console.status("Migrating the app schema ..."):
            migrate.upgrade(url)
        if demo and is_empty(url):
            with console.status(f"Loading the demo corpus ({documents} documents, seed {seed}) ..."):
                report = load_demo_corpus(url, documents, seed)
            console.print(f"Demo corpus: {report.documents} documents, {report.pages} pages, {report.chunks} chunks.")
        _report_unfinished(url)
        extra_env = {}
        operator = _demo_admin(url, seed) if demo and not settings.operator_user_id else None
        if operator:
            extra_env["REINDEX_OPERATOR_USER_ID"] = operator
            console.print(
                f"REINDEX_OPERATOR_USER_ID is not set: UI backfills, restores and the schedule run as the "
                f"demo admin ({extra_env['REINDEX_OPERATOR_USER_ID']}).",
                soft_wrap=True,
            )
        if dagster and not stop.is_set():
            with console.status("Starting Dagster (webserver and daemon) ..."):
                ui = stack.start_dagster(port or settings.dagster_port, extra_env=extra_env)
            console.print(f"\n[bold green]Dagster UI: {ui}[/bold green]   (logs: {stack.logs})")
        console.print(f"Running. Press Ctrl-C (or run `{_cli_name()} down`) to stop everything.")
        while not stop.wait(1.0):
            exited = stack.dagster_exited()
            if exited is not None:
                name, code = exited
                raise RuntimeError(f"{name} exited with code {code}; see {stack.logs / (name + '.log')}")
    finally:
        with console.status("Stopping ..."):
            stack.stop()
        console.print("Stopped.")


def _report_unfinished(url: str) -> None:
    """Say what the last stop left in flight, and what becomes of it."""
    import psycopg

    from reindex_pipeline.db.heartbeats import unfinished_work

    with psycopg.connect(url) as conn:
        found = unfinished_work(conn)
    if not any(found.values()):
        return
    console.print(
        f"[yellow]Found from before: {found['running_requests']} reindex request(s) running and "
        f"{found['pending_requests']} pending, {found['runs']} reindex run(s) that were working, "
        f"{found['indexing']} document(s) left 'indexing'. Dagster picks them up: a run whose worker is gone is "
        "marked failed within a minute (reindex_run_watch), its request retried, and its documents taken over by "
        "the next run.[/yellow]",
        soft_wrap=True,
    )


@app.command()
@friendly_errors
def down() -> None:
    """Stop a running stack (the launcher of `up`, or what a crashed one left behind)."""
    from reindex_pipeline.stack.supervisor import stop_running

    if stop_running(_settings(), notify=console.print):
        console.print("Stopped.")
    else:
        console.print("Nothing is running.")


def stack_status() -> None:
    """Show each service of the stack, its pid and whether it is alive."""
    from reindex_pipeline.stack.supervisor import read_status

    settings = _settings()
    state, alive = read_status(settings)
    if state is None:
        console.print(f"Not running (state folder {settings.state_dir}).")
        raise typer.Exit(3)
    table = Table("service", "pid", "alive", "address")
    table.add_row("launcher", str(state.launcher_pid), _yes(alive.get("launcher")), "")
    for name, service in state.services.items():
        address = _address(service)
        table.add_row(name, str(service.get("pid", "-")), _yes(alive[name]) if name in alive else "-", address)
    console.print(table)
    if not alive.get("launcher"):
        console.print("[yellow]The launcher is gone: the next `up` (or `down`) cleans up.[/yellow]")


@app.command("env")
@friendly_errors
def env_command() -> None:
    """Print `export` lines for the running stack, to use Dagster's own CLI against it."""
    from reindex_pipeline.stack.supervisor import StackState, dagster_environment

    settings = _settings()
    state = StackState.read(settings.state_dir / "stack.json")
    if state is None:
        raise RuntimeError(f"the stack is not running: start it with `{_cli_name()} up`")
    exports = dagster_environment(settings.state_dir, state.environment)
    for key, value in sorted(exports.items()):
        typer.echo(f"export {key}={_shell_quote(value)}")


@app.command("migrate")
@friendly_errors
def migrate_command(
    downgrade: Annotated[
        str | None, typer.Option(metavar="REVISION", help="Downgrade to this revision (e.g. base).")
    ] = None,
) -> None:
    """Upgrade the app schema to the newest revision (or downgrade)."""
    from reindex_pipeline.db import migrate

    url = database_url(_settings())
    if downgrade:
        migrate.downgrade(url, downgrade)
    else:
        migrate.upgrade(url)
    console.print(f"App schema at revision {migrate.current(url) or 'base'}.")


@app.command("demo-load")
@friendly_errors
def demo_load(
    documents: Annotated[int, typer.Option(metavar="N", help="How many documents.")] = 60,
    seed: Annotated[int, typer.Option(metavar="N", help="Seed: the same seed gives the same corpus.")] = 7,
    force: Annotated[bool, typer.Option(help="Load even if documents exist.")] = False,
) -> None:
    """Load the deterministic demo corpus (bulk COPY; 100,000 documents take well under a minute)."""
    import time

    from reindex_pipeline.db import migrate
    from reindex_pipeline.demo.loader import is_empty, load_demo_corpus

    url = database_url(_settings())
    migrate.upgrade(url)
    if not force and not is_empty(url):
        raise RuntimeError("the database already holds documents; pass --force to add a corpus anyway")
    started = time.monotonic()
    with console.status(f"Loading {documents} documents ..."):
        report = load_demo_corpus(url, documents, seed)
    console.print(
        f"Loaded {report.documents} documents, {report.pages} pages, {report.chunks} chunks "
        f"in {time.monotonic() - started:.1f}s."
    )


# -- reindex requests: the same path the app uses (a row in reindex_queue) ---------------------------------
AsOption = Annotated[str, typer.Option("--as", metavar="USER", help="who asks: username or user id")]
WorkspaceOption = Annotated[str | None, typer.Option(metavar="WORKSPACE", help="workspace name or id")]
AllOption = Annotated[bool, typer.Option("--all", help="every workspace")]
DocumentOption = Annotated[list[str] | None, typer.Option(metavar="ID", help="a document id (repeatable)")]
PhasesOption = Annotated[
    list[str] | None,
    typer.Option("--phase", metavar="PHASE", help="extraction, vector_indexing, graphrag_indexing (repeatable)"),
]


def _requester_and_scope(conn, requester: str, workspace: str | None, all_workspaces: bool, document: list[str] | None):
    from reindex_pipeline.reindex.admission import resolve_scope

    return resolve_scope(conn, requester, workspace, all_workspaces, document)


@app.command()
@friendly_errors
def request(
    requester: AsOption,
    workspace: WorkspaceOption = None,
    all_workspaces: AllOption = False,
    document: DocumentOption = None,
    phase: PhasesOption = None,
    dry_run: Annotated[bool, typer.Option(help="preview only: the request ends done, nothing is written")] = False,
    stale_only: Annotated[
        bool,
        typer.Option("--stale-only", help="skip each phase whose inputs and producer are unchanged since it last ran"),
    ] = False,
) -> None:
    """Queue a reindex request (a row in reindex_queue), exactly as the app does.

    The rules the queue applies when the request comes due (requester active, one request per user per
    minute, workspace not already reindexing, document ids that exist) are checked first: a request that
    would be refused is refused here, with its reason, an audit row and a non-zero exit code."""
    import psycopg

    from reindex_pipeline.reindex import admission

    with psycopg.connect(database_url(_settings())) as conn:
        queued = admission.submit(
            conn,
            requester,
            workspace=workspace,
            all_workspaces=all_workspaces,
            document_ids=document,
            phases=phase,
            dry_run=dry_run,
            stale_only=stale_only,
            source="cli",
        )
    console.print(
        f"Queued request {queued.request_id} ({queued.scope}, as {queued.username}). "
        f"Follow it with `{_cli_name()} status {queued.request_id}`."
    )


@app.command()
@friendly_errors
def preview(
    requester: AsOption,
    workspace: WorkspaceOption = None,
    all_workspaces: AllOption = False,
    document: DocumentOption = None,
    show: Annotated[int, typer.Option(metavar="N", help="skipped documents shown per reason")] = 5,
    full: Annotated[bool, typer.Option("--full", help="list every skipped document")] = False,
    csv_file: Annotated[
        Path | None, typer.Option("--csv", metavar="FILE", help="write every skipped document to a CSV file")
    ] = None,
) -> None:
    """What a request would reindex: the eligible count in the app's confirmation wording, the skipped documents
    counted by reason with the first few of each (all of them with --full or --csv). Streams the documents, so
    its memory stays flat for millions of them."""
    import csv

    import psycopg

    from reindex_pipeline.db import documents as db
    from reindex_pipeline.domain.selection import (
        REASON_TEXT,
        check_requester,
        summarise_groups,
        summarise_selection,
    )
    from reindex_pipeline.reindex import admission
    from reindex_pipeline.resources import build_resources

    resources = build_resources(os.environ, resolved=True)
    with psycopg.connect(database_url(_settings())) as conn, ExitStack() as stack:
        user, ws, scope = _requester_and_scope(conn, requester, workspace, all_workspaces, document)
        problem = admission.unknown_documents(conn, document) if document else None
        if problem:
            raise RuntimeError(problem)
        who = check_requester(db.load_requester(conn, user["id"]), user["id"])
        sizes = _TextSizes(conn) if resources["extractor"].uses_llm else None
        sinks = []
        if csv_file is not None:
            writer = csv.writer(stack.enter_context(csv_file.open("w", newline="", encoding="utf-8")))
            writer.writerow(["document_id", "filename", "reason"])
            sinks.append(lambda s: writer.writerow([s.id, s.filename, s.reason]))
        if full:
            sinks.append(lambda s: console.print(f"{s.id}  {s.reason:<18}  {s.filename}", highlight=False))
        if document or sinks or sizes:  # every document passes by: named ones, listed ones, or their text sized
            docs = (
                db.load_documents(conn, document)
                if document
                else db.iter_documents(conn, ws and ws["id"], org_id=who.org_id)
            )
            summary = summarise_selection(
                who,
                docs,
                ws and ws["id"],
                document,
                keep=show,
                on_eligible=sizes.add if sizes else None,
                on_skipped=(lambda s: [sink(s) for sink in sinks]) if sinks else None,
            )
        else:  # counted in the database by what the rules read, each kind of document judged once
            groups = db.document_groups(conn, who.id, ws and ws["id"], org_id=who.org_id, keep=show)
            summary = summarise_groups(who, groups, ws and ws["id"], keep=show)
        cost = _model_cost(resources, summary.eligible, sizes.total()) if sizes else None
    console.print(summary.confirmation())
    if summary.skipped and not full:
        from rich import box

        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        table.add_column("skipped document", no_wrap=True, min_width=36)
        table.add_column("file")
        table.add_column("reason", no_wrap=True)
        for reason, count in sorted(summary.skipped_by_reason.items()):
            for s in summary.examples.get(reason, []):
                table.add_row(s.id, s.filename, s.reason)
            if count > len(summary.examples.get(reason, [])):
                table.add_row(f"… and {count - len(summary.examples.get(reason, [])):,} more", "", reason)
        console.print(table)
        for reason in sorted(summary.skipped_by_reason):
            console.print(f"  {reason}: {REASON_TEXT[reason]}", highlight=False)
    counts = ", ".join(f"{k}: {v:,}" for k, v in sorted(summary.skipped_by_reason.items())) or "none"
    console.print(f"{summary.eligible:,} eligible, {summary.skipped:,} skipped ({counts}).", highlight=False)
    if csv_file is not None:
        console.print(f"Every skipped document is in {csv_file}.", highlight=False)
    elif summary.skipped > sum(len(v) for v in summary.examples.values()) and not full:
        console.print("List them all with --full, or write them to a file with --csv FILE.", highlight=False)
    if cost:
        console.print(cost, soft_wrap=True)


class _TextSizes:
    """Sums the text sizes of the eligible documents in batches, as they stream by (for the cost estimate)."""

    def __init__(self, conn, batch: int = 5000) -> None:
        self.conn, self.batch, self.pending, self.sums = conn, batch, [], [0, 0, 0]

    def add(self, doc) -> None:
        self.pending.append(doc.id)
        if len(self.pending) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        from reindex_pipeline.db import documents as db

        if self.pending:
            self.sums = [a + b for a, b in zip(self.sums, db.text_sizes(self.conn, self.pending), strict=True)]
            self.pending = []

    def total(self) -> tuple[int, int, int]:
        self._flush()
        return self.sums[0], self.sums[1], self.sums[2]


def _model_cost(resources: dict, documents: int, sizes: tuple[int, int, int]) -> str | None:
    """What a full reindex of these documents would ask of the API (None offline): calls and tokens, estimated
    from the text's length (4 characters a token) before anything is sent."""
    import math

    extractor, embeddings = resources["extractor"], resources["embeddings"]
    if not extractor.uses_llm or not documents:
        return None
    characters, chunks, chunk_characters = sizes
    chat = documents * extractor.calls_per_document()
    tokens_in = documents * extractor.estimate_tokens_in(0) + characters // 4
    embedding_calls = math.ceil(chunks / 128) if embeddings.openai_api_key else 0
    return (
        f"Model calls (estimated): {chat:,} to {extractor.openai_model} (~{tokens_in:,} tokens in, at most "
        f"{documents * extractor.max_output_tokens:,} out) and about {embedding_calls:,} to "
        f"{embeddings.openai_model} (~{chunk_characters // 4:,} tokens), for {documents:,} documents."
    )


@app.command("status")
@friendly_errors
def request_status(
    request_id: Annotated[
        str | None, typer.Argument(metavar="REQUEST_ID", help="a request id; none: the stack's status")
    ] = None,
    follow: Annotated[bool, typer.Option(help="show a live progress bar until the request ends")] = True,
    interval: Annotated[float, typer.Option(metavar="SECONDS", help="seconds between polls")] = 1.0,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="give up following after this many seconds")
    ] = 3600.0,
) -> None:
    """A request's progress (live until it ends), or the stack's services when no id is given."""
    if request_id is None:
        return stack_status()
    import time

    import psycopg
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from reindex_pipeline.db import queue

    _require_request_id(request_id)
    url = database_url(_settings())
    final = ("done", "failed", "refused")
    with psycopg.connect(url, autocommit=True) as conn:
        row = queue.get_request(conn, request_id)
        if row is None:
            raise RuntimeError(f"no request {request_id}")
        deadline = time.monotonic() + timeout
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
            disable=not follow,
        ) as bar:
            task = bar.add_task(row["status"], total=None)
            while True:
                row = queue.get_request(conn, request_id)
                counts = _request_counts(conn, row)
                done = (counts.get("completed") or 0) + (counts.get("failed") or 0)
                total = counts.get("eligible", 0)
                bar.update(task, description=f"{request_id[:8]} {row['status']}", completed=done, total=total or None)
                if row["status"] in final or not follow or time.monotonic() > deadline:
                    break
                time.sleep(interval)
    ran = queue_rules.tries(row["status"], row["attempts"])
    tries = f", after {ran} attempts" if ran > 1 else ""
    unchanged = f" ({counts['unchanged']} of them unchanged: nothing stale)" if counts.get("unchanged") else ""
    completed = counts.get("completed", 0)
    completed = "? (not known alone: its shared runs skipped some documents)" if completed is None else completed
    skipped = counts.get("skipped") or {}
    reasons = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(skipped.items()))
    skipped_text = f", {sum(skipped.values())} skipped ({reasons})" if skipped else ""
    line = (
        f"Request {request_id}: {row['status']}; {completed} completed{unchanged}, "
        f"{counts.get('failed', 0)} failed, {counts.get('eligible', 0)} eligible{skipped_text}{tries}."
    )
    console.print(line, soft_wrap=True)
    if shared := _shared_runs_line(row, counts):
        console.print(shared, soft_wrap=True)
    if counts.get("model_usage"):
        console.print(f"model calls: {Usage(**counts['model_usage']).summary()}", soft_wrap=True)
    if row["last_error"]:
        label = "why" if row["status"] == "refused" else "last error"
        console.print(f"{label}: {row['last_error'].removeprefix('refused: ')}", soft_wrap=True)
    if row["status"] in ("failed", "refused"):
        raise typer.Exit(2)


@app.command()
@friendly_errors
def history(limit: Annotated[int, typer.Option(metavar="N", help="how many requests")] = 20) -> None:
    """Past requests, newest first: outcome, counts, duration."""
    import psycopg

    from reindex_pipeline.db import queue

    with psycopg.connect(database_url(_settings())) as conn:
        rows = queue.history(conn, limit)
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    columns = ["request", "created", "source", "scope", "status", "docs", "done", "failed", "tries", "took"]
    with_tokens = any((r["counts"] or {}).get("model_usage") for r in rows)
    for name in columns + (["tokens in/out"] if with_tokens else []):
        table.add_column(name, no_wrap=True, min_width=len(name))
    for r in rows:
        c = r["counts"] or {}
        took = (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] and r["started_at"] else None
        table.add_row(
            str(r["id"])[:8],
            f"{r['created_at']:%m-%d %H:%M}",
            r["source"],
            r["scope"],
            r["status"],
            str(c.get("eligible", "")),
            "?" if c.get("completed", "") is None else str(c.get("completed", "")),
            str(c.get("failed", "")),
            str(queue_rules.tries(r["status"], r["attempts"])),
            f"{took:.0f}s" if took is not None else "",
            *([_tokens(c.get("model_usage"))] if with_tokens else []),
        )
    console.print(table)


@app.command()
@friendly_errors
def restores(
    limit: Annotated[int, typer.Option(metavar="N", help="how many objects")] = 20,
    status: Annotated[
        str | None, typer.Option(metavar="STATUS", help="only pending, ingested, rejected or failed ones")
    ] = None,
) -> None:
    """Files restored into the bucket, newest first: key, outcome, document, and why one was refused."""
    import psycopg

    from reindex_pipeline.db import restores as restore_objects

    if status not in (None, "pending", "ingested", "rejected", "failed"):
        raise RuntimeError(f"unknown status {status!r}: pending, ingested, rejected or failed")
    with psycopg.connect(database_url(_settings())) as conn:
        rows = restore_objects.recent(conn, limit, status)
    if not rows:
        console.print("No restored files" + (f" {status}" if status else "") + ".")
        return
    from rich import box

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for name in ("when", "status", "file", "document", "pages", "why / key"):
        table.add_column(name, no_wrap=name != "why / key", overflow="fold")
    for r in rows:
        name = r["stored_key"].rsplit("/", 1)[-1].split("__", 1)[-1]
        pages = "" if r["pages"] is None else f"{r['pages']}" + (f" ({r['ocr_pages']} OCR)" if r["ocr_pages"] else "")
        table.add_row(
            f"{r['processed_at']:%m-%d %H:%M:%S}",
            r["status"],
            name,
            (r["document_id"] or "")[:8],
            pages,
            r["error"] or r["stored_key"],
        )
    console.print(table)


def _tokens(usage: dict | None) -> str:
    """``12.3k/4.1k``: a request's model tokens in and out (empty offline)."""
    if not usage:
        return ""
    return "/".join(f"{n / 1000:.1f}k" if n >= 1000 else str(n) for n in (usage["tokens_in"], usage["tokens_out"]))


def _request_counts(conn, row: dict) -> dict:
    """A request's counts: while it runs, its runs' progress so far (each run reports after every batch it
    commits); once decided, what the queue recorded."""
    from reindex_pipeline.db import run_progress

    counts = dict(row["counts"] or {})
    attempt = counts.get("attempt_tag")
    if row["status"] == "running" and attempt:
        # runs shared with other requests are tagged with the first's id; their progress is theirs together
        so_far = run_progress.of_attempt(conn, counts.get("carrier") or row["id"], attempt)
        counts.update(completed=so_far.completed, unchanged=so_far.unchanged, failed=so_far.failed)
        if counts.get("carrier"):
            counts["eligible"] = counts.get("shared_eligible", counts.get("eligible"))
    return counts


def _shared_runs_line(row: dict, counts: dict) -> str | None:
    """What a request that shared its runs (restores queued together) did alone and with the others."""
    carrier = counts.get("carrier")
    if not carrier:
        return None
    whose = "its own" if carrier == str(row["id"]) else f"request {carrier}'s"
    if row["status"] == "running":
        return f"runs shared with other restore requests ({whose}): the counts above are theirs together."
    totals = counts.get("shared_totals") or {}
    return (
        f"runs shared with other restore requests ({whose}): together {totals.get('completed', 0)} completed "
        f"({totals.get('unchanged', 0)} unchanged), {totals.get('failed', 0)} failed."
    )


def _require_request_id(value: str) -> None:
    """``status`` and ``requeue`` word a malformed id alike."""
    problem = not_uuids([value], "request")
    if problem:
        raise RuntimeError(problem)


@app.command()
@friendly_errors
def requeue(
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID", help="a failed or refused request")],
) -> None:
    """Put a failed or refused request back in the queue."""
    import psycopg

    from reindex_pipeline.db import queue

    _require_request_id(request_id)
    with psycopg.connect(database_url(_settings())) as conn:
        if not queue.requeue(conn, request_id):
            raise RuntimeError(f"request {request_id} is not failed or refused (or does not exist)")
    console.print(f"Requeued {request_id}.")


# -- consistency: per-document checks, repair, the store-wide audit, the published collection -------------
@contextmanager
def _open_stores():
    """(connection, current model's VectorIndex, graph, resources) of the running stack or the external services."""
    import psycopg

    from reindex_pipeline.resources import build_resources, close_local_qdrant, vector_index
    from reindex_pipeline.stack.supervisor import StackState

    settings = _settings()
    state = StackState.read(settings.state_dir / "stack.json")
    environ = {**(state.environment if state else {}), **os.environ}
    environ["DATABASE_URL"] = database_url(settings)
    resources = build_resources(environ, resolved=True)
    try:
        index = vector_index(resources["qdrant"], resources["embeddings"])
    except RuntimeError as exc:
        raise RuntimeError(
            f"{exc} (a reindex holds the local Qdrant folder: run the `check_documents` job in "
            "the Dagster UI, or try again when it is done)"
        ) from None
    try:
        with psycopg.connect(environ["DATABASE_URL"], autocommit=True) as conn, resources["graph"].open() as graph:
            yield conn, index, graph, resources
    finally:
        if resources["qdrant"].path:  # release the local folder now, not in the interpreter's shutdown
            close_local_qdrant(resources["qdrant"].path)


@app.command()
@friendly_errors
def check(
    document: Annotated[
        list[str] | None, typer.Argument(metavar="DOCUMENT_ID", help="document ids (none: every document)")
    ] = None,
) -> None:
    """Cross-store consistency of documents: Postgres chunks = live Qdrant points = live graph chunks,
    owner/workspace current everywhere, nothing left of deleted ones. Exit code 1 when any check fails."""
    from reindex_pipeline.reindex import admission, consistency

    _require_uuids(document or [])
    with _open_stores() as (conn, index, graph, _):
        problem = admission.unknown_documents(conn, document) if document else None
        if problem:  # an id of no document is not "checked: 0 inconsistent"
            raise RuntimeError(problem)
        ids = document or [r[0] for r in conn.execute("SELECT id::text FROM documents ORDER BY created_at")]
        if not index.client.collection_exists(index.collection):
            raise RuntimeError(f"no Qdrant collection {index.collection}: nothing has been reindexed yet")
        failures = []
        for start in range(0, len(ids), 200):
            for doc_id, facts in consistency.gather(conn, ids[start : start + 200], index, graph).items():
                failures += [(doc_id, r.check, r.description) for r in consistency.evaluate(facts) if not r.passed]
    if failures:
        table = Table("document", "check", "difference", box=None)
        for row in failures[:200]:
            table.add_row(*row)
        console.print(table)
    documents = len({f[0] for f in failures})
    console.print(
        f"{len(ids)} documents checked: {documents} inconsistent ({len(failures)} failed checks)."
        + (f" Repair with `{_cli_name()} repair --as ADMIN DOCUMENT_ID...`." if failures else "")
    )
    if failures:
        raise typer.Exit(1)


@app.command()
@friendly_errors
def repair(
    requester: AsOption,
    document: Annotated[list[str], typer.Argument(metavar="DOCUMENT_ID", help="document ids to repair")],
) -> None:
    """Repair documents: a deleted one is purged again; a live one is reindexed (forced) through the queue."""
    import psycopg

    from reindex_pipeline.db import queue
    from reindex_pipeline.db.documents import load_documents

    _require_uuids(document)
    with psycopg.connect(database_url(_settings()), autocommit=True) as conn:
        user, _, _ = _requester_and_scope(conn, requester, None, False, document)
        found = {d.id: d for d in load_documents(conn, document)}
        purge = [d for d in document if d not in found or found[d].deleted_at is not None]
        live = [d for d in document if d not in purge]
        for doc_id in purge:
            conn.execute("INSERT INTO source_changes (document_id, kind) VALUES (%s, 'purge')", (doc_id,))
        if live:
            request_id = queue.insert_request(
                conn, org_id=user["org_id"], requested_by=user["id"], scope="documents", document_ids=live, source="cli"
            )
            console.print(f"Queued a forced reindex of {len(live)} documents: request {request_id}.")
    if purge:
        console.print(f"Queued a purge of {len(purge)} deleted documents (the source_changes sensor runs it).")


@app.command()
@friendly_errors
def audit() -> None:
    """Scan every store once and print what differs from Postgres: orphans, missing, duplicates, stale.
    Exit code 1 when anything differs."""
    from reindex_pipeline.reindex import store_audit
    from reindex_pipeline.vectors import model_collections

    with _open_stores() as (conn, index, graph, resources):
        source = store_audit.scan_postgres(conn)
        current = (
            store_audit.scan_points(index.client, index.collection, source)
            if index.client.collection_exists(index.collection)
            else {}
        )
        others: dict[str, int] = {}
        for collection in model_collections(index.client, resources["qdrant"].collection):
            if collection != index.collection:
                for doc_id, tally in store_audit.scan_points(index.client, collection, source).items():
                    others[doc_id] = others.get(doc_id, 0) + tally.points
        graph_chunks, graph_nodes = store_audit.scan_graph(graph)
    report = store_audit.compare(source, current, others, graph_chunks, graph_nodes)
    console.print(
        f"{report.documents} documents in Postgres; {sum(t.points for t in current.values())} points "
        f"in {index.collection}; {sum(graph_chunks.values())} graph chunks."
    )
    for kind, ids in sorted(report.differences.items()):
        console.print(f"  {kind}: {len(ids)}  e.g. {', '.join(ids[:3])}")
    if report.clean:
        console.print("Every store agrees with Postgres.")
    else:
        raise typer.Exit(1)


vectors_app = typer.Typer(help="The Qdrant collection readers use (an alias) and the per-model collections.")
app.add_typer(vectors_app, name="vectors")


@vectors_app.command("status")
@friendly_errors
def vectors_status() -> None:
    """Which collection readers use, and each model's collection with its points."""
    from reindex_pipeline.db.documents import missing_vectors
    from reindex_pipeline.vectors import alias_target, model_collections

    with _open_stores() as (conn, index, _, resources):
        alias = resources["qdrant"].collection
        target = alias_target(index.client, alias)
        console.print(f"Readers use `{alias}` -> {target or '(nothing published yet)'}.")
        for collection in model_collections(index.client, alias):
            points = index.client.count(collection, exact=True).count
            note = ""
            if collection == index.collection:
                note = (
                    f"current model; {missing_vectors(conn, collection, resources['embeddings'].identity)} "
                    "eligible documents not in it yet"
                )
            console.print(f"  {collection}: {points} points {note}")


@vectors_app.command("drop-old")
@friendly_errors
def vectors_drop_old() -> None:
    """Drop the collections of earlier embedding models (never the one readers use)."""
    from reindex_pipeline.vectors import drop_unpublished

    with _open_stores() as (_, index, _, resources):
        dropped = drop_unpublished(index.client, resources["qdrant"].collection)
    console.print(f"Dropped {', '.join(dropped)}." if dropped else "Nothing to drop.")


@app.command("env-vars")
def env_vars() -> None:
    """List every environment variable the project reads."""
    table = Table("variable", "what it does", "default")
    for name, (what, default) in ENV_VARS.items():
        table.add_row(name, what, default)
    console.print(table)


def _address(service: dict[str, Any]) -> str:
    """Where a service of the stack answers: its URL, its folder or its port; a process with none (the daemon)
    has no address."""
    where = service.get("url") or service.get("path")
    if where:
        return str(where)
    return f"127.0.0.1:{service['port']}" if service.get("port") else "-"


def _print_services(services: dict[str, dict[str, Any]], settings: Settings) -> None:
    for name, service in services.items():
        where = _address(service)
        console.print(f"  [green]✓[/green] embedded {name:<9} {where}")
    for name, value in (
        ("DATABASE_URL", settings.database_url),
        ("QDRANT_URL", settings.qdrant_url),
        ("NEO4J_URI", settings.neo4j_uri),
        ("BUCKET_URL", settings.bucket_url),
    ):
        if value:
            console.print(f"  [cyan]→[/cyan] external {name}")


def _demo_admin(url: str, seed: int) -> str | None:
    """The demo corpus's admin id, if that user exists and is an active admin."""
    import psycopg

    from reindex_pipeline.demo.corpus import stable_id

    admin = str(stable_id(seed, "user", "admin"))
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT 1 FROM users WHERE id::text = %s AND role = 'admin' AND status = 'active'", (admin,)
        ).fetchone()
    return admin if row else None


def _require_uuids(document_ids: list[str]) -> None:
    problem = not_uuids(document_ids, "document")
    if problem:
        raise RuntimeError(problem)


def _yes(value: bool | None) -> str:
    return "[green]yes[/green]" if value else "[red]no[/red]"


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


if __name__ == "__main__":  # pragma: no cover
    app()
