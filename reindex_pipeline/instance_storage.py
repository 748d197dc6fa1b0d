"""Dagster instance storage on Postgres, cheaper per stored event (named in ``dagster.yaml``).

These are the dagster-postgres storages with three changes a reindex run needs (it stores three
materialisations per document, and a run over N partitions plans 3 x N when it is created):
- the pooled engine the webserver already uses (``optimize_for_webserver``) instead of a new connection for
  every statement group: one connection held per process, a few more under concurrency, recycled hourly;
- the event log remembers tables it has seen, instead of asking on a second connection for every
  materialisation with tags (which the one-connection pool opened and closed each time);
- a batch of planned materialisations is written in one statement (when ``DAGSTER_EVENT_BATCH_SIZE`` is set).
Figures: docs/benchmarks.md, "What a stored event costs Dagster".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
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


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """The dagster-postgres event log, on a connection pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._tables_seen: set[str] = set()
        super().__init__(*args, **kwargs)
        self.optimize_for_webserver(statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=MAX_OVERFLOW)

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
        statement = self.prepare_insert_event_batch(events)
        with self._connect() as conn:
            ids = [row[0] for row in conn.execute(statement.returning(statement.table.c.id))]
        last = {e.dagster_event.asset_key: (e, i) for e, i in zip(events, ids, strict=True)}
        with self.index_transaction() as conn:
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> PooledPostgresEventLogStorage:
        return cls(inst_data=inst_data, **_storage_kwargs(config_value))


class PooledPostgresRunStorage(PostgresRunStorage):
    """The dagster-postgres run storage, on a connection pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.optimize_for_webserver(statement_timeout=0, pool_recycle=POOL_RECYCLE_S, max_overflow=MAX_OVERFLOW)

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> PooledPostgresRunStorage:
        return cls(inst_data=inst_data, **_storage_kwargs(config_value))
