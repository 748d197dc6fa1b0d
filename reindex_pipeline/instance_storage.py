"""Dagster instance storage on Postgres, cheaper per stored event (named in ``dagster.yaml``).

These are the dagster-postgres storages with five changes a reindex run needs (it stores three
materialisations per document, and a run over N partitions plans 3 x N when it is created):
- the pooled engine the webserver already uses (``optimize_for_webserver``) instead of a new connection for
  every statement group: one connection held per process, a few more under concurrency, recycled hourly;
- the event log remembers tables it has seen, instead of asking on a second connection for every
  materialisation with tags (which the one-connection pool opened and closed each time);
- a batch of planned materialisations is written in one statement (when ``DAGSTER_EVENT_BATCH_SIZE`` is set);
- a step's materialisations are written behind, in batches (``PooledPostgresEventLogStorage``);
- a run's planned partitioned checks are stored a partition per row (not the run's whole subset in each row).
Figures: docs/benchmarks.md, "What a stored event costs Dagster".
"""

from __future__ import annotations

import atexit
import sys
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

POOL_RECYCLE_S = 3600
MAX_OVERFLOW = 8  # connections beyond the held one, for processes that store from several threads (daemon)


def _storage_kwargs(config_value: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "postgres_url": pg_url_from_config(config_value),
        "should_autocreate_tables": config_value.get("should_autocreate_tables", True),
        "token_provider": get_token_provider_from_config(config_value),
    }


#: A step's materialisations wait at most this long, or for this many more, before they are written.
WRITE_BEHIND_S = 1.0
WRITE_BEHIND_EVENTS = 200


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """The dagster-postgres event log, on a connection pool, writing a step's materialisations behind.

    Write-behind: an asset materialisation a step reports (a reindex reports three per document) is kept in
    memory and written with the others in one transaction: when ``WRITE_BEHIND_EVENTS`` are waiting, when
    the oldest has waited ``WRITE_BEHIND_S``, before any other event of this process is stored (so the event
    log's order is the order they happened in), before this process reads the event log (so it always reads
    its own writes), and when the instance is disposed or the process exits. Stored one by one, each costs
    four statements in two transactions (~2.4 ms of a run's time); in a batch, ~0.4 ms. Dagster batches the
    materialisations of a ranged output the same way (``DAGSTER_EVENT_BATCH_SIZE``), not those a step reports
    itself. A run worker killed outright loses at most the last second of its materialisations: the
    documents they describe were indexed, and the next reindex of them rewrites the same data.
    Runless events (reported from the UI or the API) are written at once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._tables_seen: set[str] = set()
        self._waiting: list[dg.EventLogEntry] = []
        self._lock = threading.RLock()
        self._writer: int | None = None  # the thread writing the waiting events, which must not wait for itself
        self._timer: threading.Timer | None = None
        self._check_executions_table: sa.Table | None = None
        super().__init__(*args, **kwargs)
        self.optimize_for_webserver(statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=MAX_OVERFLOW)
        atexit.register(_write_waiting, weakref.ref(self))

    def store_event(self, event: dg.EventLogEntry) -> None:
        if event.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION and event.step_key:
            with self._lock:
                self._waiting.append(event)
                if len(self._waiting) >= WRITE_BEHIND_EVENTS:
                    self.write_waiting()
                elif self._timer is None:
                    self._start_timer()
            return
        with self._lock:
            self.write_waiting()
            super().store_event(event)

    def write_waiting(self) -> None:
        """Write the materialisations waiting in this process in one transaction, or one by one if that fails
        (each written one leaves the queue, so a retry never writes it twice; an error names the event)."""
        with self._lock:
            if not self._waiting or self._writer == threading.get_ident():
                return
            self._writer = threading.get_ident()
            try:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                try:
                    self._store_asset_events(self._waiting)
                    self._waiting = []
                except Exception as exc:  # noqa: BLE001 (Dagster's own batch writing falls back the same way)
                    sys.stderr.write(
                        f"Storing {len(self._waiting)} materialisations at once failed ({exc}); "
                        "storing them one by one.\n"
                    )
                    while self._waiting:
                        super().store_event(self._waiting[0])
                        self._waiting.pop(0)
            finally:
                self._writer = None

    def _start_timer(self) -> None:
        self._timer = threading.Timer(WRITE_BEHIND_S, self._write_waiting_on_time)
        self._timer.daemon = True
        self._timer.start()

    def _write_waiting_on_time(self) -> None:
        """The timer's write. If it fails, the events wait for the next write (which raises to its caller) and
        the timer is set again."""
        try:
            self.write_waiting()
        except Exception as exc:  # noqa: BLE001 (a timer thread has nobody to raise to)
            sys.stderr.write(f"Writing {len(self._waiting)} waiting materialisations failed: {exc}\n")
            with self._lock:
                if self._waiting and self._timer is None:
                    self._start_timer()

    def _store_asset_events(self, events: Sequence[dg.EventLogEntry]) -> None:
        """Asset events in one transaction: their rows, their tags, and each asset's row from its last event
        (what storing them one by one leaves there)."""
        statement = self.prepare_insert_event_batch(events)
        with self.index_transaction() as conn:
            ids = [row[0] for row in conn.execute(statement.returning(statement.table.c.id))]
            self._store_asset_event_tags(conn, events, ids)
            last = {e.dagster_event.asset_key: (e, i) for e, i in zip(events, ids, strict=True)}
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)

    def _store_asset_check_evaluation_planned(self, event: dg.EventLogEntry, event_id: int | None) -> None:
        """A run that plans a partitioned check gets a row per partition. dagster-postgres stores in every row
        the planned event as the run's log has it, holding the run's whole partition subset: for a backfill
        run over 1,000 documents, 1,000 rows of ~35 KB per check, serialised one by one (~1 s per check).
        Here each row holds the planned event narrowed to its own partition (the run's log keeps the whole
        one); Dagster reads these rows for their status, run and partition columns, never for the subset."""
        planned = event.dagster_event.event_specific_data
        common = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": "PLANNED",
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        subset = planned.partitions_subset
        if subset is None:
            rows = [{**common, "partition": None, "evaluation_event": dg.serialize_value(event)}]
        else:
            rows = [
                {**common, "partition": key, "evaluation_event": dg.serialize_value(_planned_for(event, key))}
                for key in subset.get_partition_keys()
            ]
        with self.index_connection() as conn:
            conn.execute(self._check_executions(conn).insert(), rows)

    def _check_executions(self, conn: Any) -> sa.Table:
        """Dagster's asset check executions table, as the database has it."""
        if self._check_executions_table is None:
            self._check_executions_table = sa.Table("asset_check_executions", sa.MetaData(), autoload_with=conn)
        return self._check_executions_table

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        """Every read and write goes through here: this process's waiting materialisations are written first."""
        if self._waiting and self._writer != threading.get_ident():
            self.write_waiting()
        with super()._connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.write_waiting()
        super().dispose()

    def has_table(self, table_name: str) -> bool:
        """Asked for every stored materialisation with tags, on a second connection while the first is held:
        with one pooled connection that opened (and closed) a new one per event. A table seen stays."""
        if table_name not in self._tables_seen and super().has_table(table_name):
            self._tables_seen.add(table_name)
        return table_name in self._tables_seen

    def store_event_batch(self, events: Sequence[dg.EventLogEntry]) -> None:
        """Planned materialisations in one statement. A run over a range of N document partitions plans
        3 x N of them when it is created; stored one by one (what dagster-postgres does for this event type)
        that is ~2 ms each. Dagster hands them over in batches only when ``DAGSTER_EVENT_BATCH_SIZE`` is set
        (``reindex-pipeline up`` sets it). The asset-key row keeps what storing them one by one leaves:
        the last run id and time, from each asset's last event."""
        if not events or any(e.dagster_event_type != dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED for e in events):
            super().store_event_batch(events)
            return
        self._store_asset_events(events)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> PooledPostgresEventLogStorage:
        return cls(inst_data=inst_data, **_storage_kwargs(config_value))


def _planned_for(event: dg.EventLogEntry, partition: str) -> dg.EventLogEntry:
    """A check's planned event, narrowed to one partition of the run's subset."""
    planned = event.dagster_event.event_specific_data
    one = planned.partitions_subset.empty_subset().with_partition_keys([partition])
    data = type(planned)(asset_key=planned.asset_key, check_name=planned.check_name, partitions_subset=one)
    narrowed = event.dagster_event._replace(event_specific_data=data)
    return event._replace(dagster_event=narrowed)


def _write_waiting(storage: weakref.ref[PooledPostgresEventLogStorage]) -> None:
    """At exit: what a process still holds is written (a run worker's last materialisations)."""
    alive = storage()
    if alive is not None:
        alive.write_waiting()


class PooledPostgresRunStorage(PostgresRunStorage):
    """The dagster-postgres run storage, on a connection pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.optimize_for_webserver(statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=MAX_OVERFLOW)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> PooledPostgresRunStorage:
        return cls(inst_data=inst_data, **_storage_kwargs(config_value))
