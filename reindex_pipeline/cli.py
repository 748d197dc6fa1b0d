"""``reindex-pipeline``: run the embedded stack and the project's chores from a terminal.

Errors are printed as one line (``error: ...``) with exit code 1, never as a traceback.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from reindex_pipeline.settings import ENV_VARS, Settings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Rebuild a document app's derived indexes with Dagster.")
console = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    return Settings.from_env(os.environ)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected failures into one clear line and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import psycopg

        from reindex_pipeline.stack.supervisor import StackError

        try:
            return fn(*args, **kwargs)
        except (StackError, ValueError, RuntimeError, psycopg.OperationalError) as exc:
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
            f"no database: set DATABASE_URL, or start the stack first (`reindex-pipeline up`) in {settings.state_dir}"
        )
    return state.environment["DATABASE_URL"]


@app.command()
@friendly_errors
def up(
    dagster: Annotated[bool, typer.Option(help="Run `dagster dev` (UI and daemon).")] = True,
    demo: Annotated[bool, typer.Option(help="Load the demo corpus into an empty database.")] = True,
    documents: Annotated[int, typer.Option(help="Demo corpus size.")] = 60,
    seed: Annotated[int, typer.Option(help="Demo corpus seed.")] = 7,
    port: Annotated[int | None, typer.Option(help="Dagster UI port (default DAGSTER_PORT or 3000).")] = None,
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
            console.print(f"Demo corpus: {report.documents} documents, {report.pages} pages, "
                          f"{report.chunks} chunks.")
        if dagster and not stop.is_set():
            with console.status("Starting Dagster (webserver and daemon) ..."):
                ui = stack.start_dagster(port or settings.dagster_port)
            console.print(f"\n[bold green]Dagster UI: {ui}[/bold green]   (logs: {stack.logs})")
        console.print("Running. Press Ctrl-C (or run `reindex-pipeline down`) to stop everything.")
        while not stop.wait(1.0):
            code = stack.dagster_exited()
            if code is not None:
                raise RuntimeError(f"dagster dev exited with code {code}; see {stack.logs / 'dagster.log'}")
    finally:
        with console.status("Stopping ..."):
            stack.stop()
        console.print("Stopped.")


@app.command()
@friendly_errors
def down() -> None:
    """Stop a running stack (the launcher of `up`, or what a crashed one left behind)."""
    from reindex_pipeline.stack.supervisor import stop_running

    if stop_running(_settings(), notify=console.print):
        console.print("Stopped.")
    else:
        console.print("Nothing is running.")


@app.command()
@friendly_errors
def status() -> None:
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
        address = service.get("url") or service.get("path") or f"127.0.0.1:{service.get('port')}"
        table.add_row(name, str(service.get("pid", "-")), _yes(alive[name]) if name in alive else "-", address)
    console.print(table)
    if not alive.get("launcher"):
        console.print("[yellow]The launcher is gone: the next `up` (or `down`) cleans up.[/yellow]")


@app.command("env")
@friendly_errors
def env_command() -> None:
    """Print `export` lines for the running stack, to use Dagster's own CLI against it."""
    from reindex_pipeline.stack.supervisor import StackState

    settings = _settings()
    state = StackState.read(settings.state_dir / "stack.json")
    if state is None:
        raise RuntimeError("the stack is not running: start it with `reindex-pipeline up`")
    exports = {**state.environment, "DAGSTER_HOME": str(settings.state_dir / "dagster_home"),
               "DAGSTER_ARTIFACTS_DIR": str(settings.state_dir / "dagster_artifacts")}
    exports.setdefault("DAGSTER_PG_URL", exports.get("DATABASE_URL", ""))
    for key, value in sorted(exports.items()):
        typer.echo(f"export {key}={_shell_quote(value)}")


@app.command("migrate")
@friendly_errors
def migrate_command(
    downgrade: Annotated[str | None, typer.Option(help="Downgrade to this revision (e.g. base).")] = None,
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
    documents: Annotated[int, typer.Option(help="How many documents.")] = 60,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same corpus.")] = 7,
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
    console.print(f"Loaded {report.documents} documents, {report.pages} pages, {report.chunks} chunks "
                  f"in {time.monotonic() - started:.1f}s.")


@app.command("env-vars")
def env_vars() -> None:
    """List every environment variable the project reads."""
    table = Table("variable", "what it does", "default")
    for name, (what, default) in ENV_VARS.items():
        table.add_row(name, what, default)
    console.print(table)


def _print_services(services: dict[str, dict[str, Any]], settings: Settings) -> None:
    for name, service in services.items():
        where = service.get("url") or service.get("path") or f"127.0.0.1:{service.get('port')}"
        console.print(f"  [green]✓[/green] embedded {name:<9} {where}")
    for name, value in (("DATABASE_URL", settings.database_url), ("QDRANT_URL", settings.qdrant_url),
                        ("NEO4J_URI", settings.neo4j_uri), ("BUCKET_URL", settings.bucket_url)):
        if value:
            console.print(f"  [cyan]→[/cyan] external {name}")


def _yes(value: bool | None) -> str:
    return "[green]yes[/green]" if value else "[red]no[/red]"


def _shell_quote(value: str) -> str:
    import shlex

    return shlex.quote(value)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()


