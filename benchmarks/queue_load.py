"""The queue under load (part of ``./dev bench faults``): 1,000 rows inserted at once by many users, through the
real daemon, while a client keeps asking the webserver for runs.

``--users`` active users of the demo org each own one eligible document and insert ``1000 / users`` requests
for it in one transaction, mixed with rows a sensor must refuse or find empty: a suspended requester, a
requester of another organisation, ids of documents that do not exist, and 10,000 of them in one row. Printed:
the rows by final status and reason, runs launched per request (a request that ran must have exactly one run,
a refused or empty one none), terminal audit rows per request (exactly one), the time to drain the queue,
and the webserver's GraphQL latency meanwhile (p50 / p95 / max).
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter

import psycopg

from reindex_pipeline.db import queue as queue_db
from reindex_pipeline.stack.dagster_client import DagsterClient

TERMINAL = ("done", "refused", "failed")
#: What the UI's runs page asks for.
LATEST_RUNS = "query { runsOrError(limit: 25) { ... on Runs { results { runId status startTime endTime } } } }"
TERMINAL_AUDIT = ("reindex.completed", "reindex.refused", "reindex.failed")


def _make_users(conn: psycopg.Connection, org: str, count: int) -> list[tuple[str, str]]:
    """``count`` new active users, each given one eligible document of the org: (user id, document id)."""
    tag = uuid.uuid4().hex[:6]
    docs = [
        r[0]
        for r in conn.execute(
            "SELECT d.id::text FROM documents d JOIN workspaces w ON w.id = d.workspace_id WHERE w.org_id = %s "
            "AND d.deleted_at IS NULL AND d.convert_status = 'converted' AND d.index_status = 'indexed' "
            "ORDER BY d.id LIMIT %s",
            (org, count),
        )
    ]
    pairs = []
    for n, doc in enumerate(docs):
        user = conn.execute(
            "INSERT INTO users (org_id, username, email) VALUES (%s, %s, %s) RETURNING id::text",
            (org, f"load-{tag}-{n}", f"load-{tag}-{n}@example.com"),
        ).fetchone()[0]
        conn.execute("UPDATE documents SET owner_id = %s WHERE id = %s", (user, doc))
        pairs.append((user, doc))
    return pairs


class LatencyProbe(threading.Thread):
    """Asks the webserver for the latest runs every ``interval`` seconds and records each answer's latency."""

    def __init__(self, url: str, interval: float = 0.5):
        super().__init__(daemon=True)
        self.client, self.interval = DagsterClient(url, timeout=30), interval
        self.latencies: list[float] = []
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            started = time.perf_counter()
            try:
                self.client.gql(LATEST_RUNS)
                self.latencies.append(time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - a failed answer is what we count
                self.errors += 1

    def stop(self) -> str:
        self._halt.set()
        self.join()
        self.client.close()
        ms = sorted(x * 1000 for x in self.latencies)
        if not ms:
            return f"no answer ({self.errors} errors)"
        p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
        return (
            f"{len(ms)} answers, p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms, "
            f"{self.errors} errors"
        )


def queue_load(dagster, url: str, admin: str, rows: int = 1000, users: int = 40, timeout: float = 1800) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        org = conn.execute("SELECT org_id::text FROM users WHERE id = %s", (admin,)).fetchone()[0]
        pairs = _make_users(conn, org, users + 2)
        pairs, (missing_asker, many_asker) = pairs[:-2], pairs[-2:]  # the last two ask only for odd documents
        suspended = conn.execute("SELECT id::text FROM users WHERE status = 'suspended' LIMIT 1").fetchone()[0]
        other_org = conn.execute(
            "INSERT INTO organizations (name, slug) VALUES ('Elsewhere', %s) RETURNING id::text",
            (f"elsewhere-{uuid.uuid4().hex[:6]}",),
        ).fetchone()[0]
        foreigner = conn.execute(
            "INSERT INTO users (org_id, username, email, role) VALUES (%s, %s, %s, 'admin') RETURNING id::text",
            (other_org, f"foreign-{other_org[:6]}", f"foreign-{other_org[:6]}@example.com"),
        ).fetchone()[0]
    time.sleep(12)  # the owner changes above are propagated first (source_changes sensor), not timed here
    bad = [
        ("suspended requester", suspended, [pairs[0][1]]),
        ("requester of another organisation", foreigner, [pairs[1][1]]),
        ("documents that do not exist", missing_asker[0], [str(uuid.uuid4()) for _ in range(3)]),
        ("10,000 document ids", many_asker[0], [str(uuid.uuid4()) for _ in range(9999)] + [many_asker[1]]),
    ]
    plan: list[tuple[str, str, list[str]]] = [bad[n % len(bad)] for n in range(20)]
    plan += [("user request", *pairs[n % len(pairs)]) for n in range(rows - len(plan))]
    plan = [(kind, user, docs if isinstance(docs, list) else [docs]) for kind, user, docs in plan]

    probe = LatencyProbe(dagster.client.url)
    probe.start()
    started = time.perf_counter()
    kinds: dict[str, str] = {}
    with psycopg.connect(url) as conn:  # one transaction: the sensor sees all 1,000 at once
        for kind, user, docs in plan:
            rid = queue_db.insert_request(
                conn, org_id=org, requested_by=user, scope="documents", document_ids=docs, source="app"
            )
            kinds[rid] = kind
    print(f"\n== {len(plan)} queue rows inserted at once by {len(pairs) + 4} users (real daemon)")
    with psycopg.connect(url, autocommit=True) as conn:
        deadline, decided = time.monotonic() + timeout, None
        while True:
            open_rows, pending = conn.execute(
                "SELECT count(*) FILTER (WHERE status <> ALL(%s)), count(*) FILTER (WHERE status = 'pending') "
                "FROM reindex_queue WHERE id = ANY(%s::uuid[])",
                (list(TERMINAL), list(kinds)),
            ).fetchone()
            if decided is None and not pending:
                decided = time.perf_counter() - started
            if not open_rows or time.monotonic() > deadline:
                break
            time.sleep(1)
        drained = time.perf_counter() - started
        rows_ = conn.execute(
            "SELECT id::text, status, coalesce(last_error, ''), coalesce((counts->>'eligible')::int, 0) "
            "FROM reindex_queue WHERE id = ANY(%s::uuid[])",
            (list(kinds),),
        ).fetchall()
        audits = Counter(
            r[0]
            for r in conn.execute(
                "SELECT details->>'request_id' FROM audit_events WHERE kind = ANY(%s) "
                "AND details->>'request_id' = ANY(%s)",
                (list(TERMINAL_AUDIT), list(kinds)),
            )
        )
    latency = probe.stop()
    runs: Counter[str] = Counter()
    for run in dagster.client.runs(tags=[{"key": "reindex/source", "value": "app"}]):
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if tags.get("reindex/request_id") in kinds:
            runs[tags["reindex/request_id"]] += 1
    outcomes: Counter[tuple[str, str, str]] = Counter()
    wrong_runs = wrong_audit = 0
    for rid, status, error, eligible in rows_:
        reason = error.split(":")[0] if error else ("nothing eligible" if not eligible else "reindexed")
        outcomes[(kinds[rid], status, reason)] += 1
        expected_runs = 1 if status == "done" and eligible else 0
        wrong_runs += runs.get(rid, 0) != expected_runs
        wrong_audit += audits.get(rid, 0) != 1
    print(
        f"   every row decided (none pending) after {decided or drained:.0f} s; drained in {drained:.0f} s "
        f"({open_rows} rows still open); {sum(runs.values())} runs launched"
    )
    for (kind, status, reason), n in sorted(outcomes.items()):
        print(f"   {n:5d} {kind}: {status} ({reason})")
    print(
        f"   requests with a wrong number of runs: {wrong_runs}; without exactly one outcome audit row: {wrong_audit}"
    )
    print(f"   webserver GraphQL meanwhile: {latency}")
