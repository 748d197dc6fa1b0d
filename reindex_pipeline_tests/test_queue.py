"""The reindex queue: sensors evaluated on a real instance, the runs they request actually executed."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
import pytest

from reindex_pipeline.db import queue
from reindex_pipeline.defs.ocr import preserved_ocr_output
from reindex_pipeline.defs.queue import (
    REQUEST_TAG,
    reindex_queue_outcomes,
    reindex_queue_sensor,
    restore_run_waiting,
)
from reindex_pipeline.defs.reindex import build_reindex_asset
from reindex_pipeline.demo.corpus import build_users, build_workspaces, stable_id
from reindex_pipeline.demo.loader import load_demo_corpus
from reindex_pipeline.domain.queue_rules import (
    QUEUE_SOURCE_TAG,
    RUN_CREATION_GRACE_S,
    after_failure,
    backoff_seconds,
    own_failures,
    refusal_reason,
    run_sizes,
    runs_lost,
    sharing_runs,
    tries,
)
from reindex_pipeline.embeddings import EmbeddingModel
from reindex_pipeline.partitions import apply_requests
from reindex_pipeline.reindex import requests
from reindex_pipeline.reindex.extractors import Extractor
from reindex_pipeline.resources import AppDatabase, GraphDatabase, QdrantStore, ReindexPolicy

SEED = 7
USERS = {u.username: str(u.id) for u in build_users(SEED)}
WORKSPACES = {w.name: str(w.id) for w in build_workspaces(SEED)}
ORG = str(stable_id(SEED, "org"))
ASSET = build_reindex_asset(100)


class BrokenEmbeddingModel(EmbeddingModel):
    """Fault injection at the model boundary: every embedding call fails."""

    def embedder(self):
        class Broken:
            model, dimensions = "all-MiniLM-L6-v2", 384

            def embed(self, texts):
                raise TimeoutError("embedding service timed out")

        return Broken()


class Queue:
    def __init__(self, url: str, max_attempts: int = 4, instance: dg.DagsterInstance | None = None):
        self.url = url
        self.instance = instance or dg.DagsterInstance.ephemeral()
        self.policy = ReindexPolicy(operator_user_id=USERS["admin"], max_attempts=max_attempts)
        self.graph = f"q_{uuid.uuid4().hex[:8]}"
        self.collection = f"q_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url) as conn:
            ids = [
                r[0]
                for r in conn.execute("SELECT id::text FROM documents WHERE deleted_at IS NULL ORDER BY created_at")
            ]
        self.instance.add_dynamic_partitions("documents", ids)

    def resources(self, embeddings=None) -> dict:
        return {
            "app_db": AppDatabase(url=self.url),
            "reindex_policy": self.policy,
            "qdrant": QdrantStore(path=os.environ["QDRANT_PATH"], collection=self.collection),
            "graph": GraphDatabase(falkordb_port=int(os.environ["FALKORDB_PORT"]), graph_name=self.graph),
            "extractor": Extractor(),
            "embeddings": embeddings or EmbeddingModel(),
        }

    def request(self, **kwargs) -> str:
        kwargs.setdefault("org_id", ORG)
        with psycopg.connect(self.url) as conn:
            return queue.insert_request(conn, **kwargs)

    def tick(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(instance=self.instance, resources=self.resources())
        result = reindex_queue_sensor(context)
        apply_requests(self.instance, result.dynamic_partitions_requests)
        return list(result.run_requests or [])

    def execute(self, run_request: dg.RunRequest, embeddings=None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [ASSET, preserved_ocr_output],
            selection=run_request.asset_selection,
            instance=self.instance,
            resources=self.resources(embeddings),
            run_config=run_request.run_config,
            tags=run_request.tags,
            raise_on_error=False,
        )

    def follow(self) -> None:
        reindex_queue_outcomes(dg.build_sensor_context(instance=self.instance, resources=self.resources()))

    def row(self, request_id: str) -> dict:
        with psycopg.connect(self.url) as conn:
            return queue.get_request(conn, request_id)

    def make_due(self, request_id: str) -> None:
        with psycopg.connect(self.url) as conn:
            conn.execute("UPDATE reindex_queue SET scheduled_at = now() WHERE id = %s", (request_id,))


@pytest.fixture()
def q(app_db: str) -> Queue:
    load_demo_corpus(app_db, 60, SEED)
    return Queue(app_db)


def _eligible(url: str, owner: str | None = None, workspace: str | None = None) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id::text, owner_id::text, workspace_id::text FROM documents WHERE "
            "convert_status = 'converted' AND index_status = 'indexed' AND deleted_at IS NULL"
        )
        return {r[0] for r in rows if (owner is None or r[1] == owner) and (workspace is None or r[2] == workspace)}


def test_a_pending_row_becomes_a_run_and_ends_done_with_counts(q: Queue) -> None:
    rid = q.request(requested_by=USERS["bob"], scope="workspace", workspace_id=WORKSPACES["Invoices"])
    [run] = q.tick()
    assert q.row(rid)["status"] == "running"
    assert run.tags[REQUEST_TAG] == rid and run.tags["dagster/priority"] == "10"
    wanted = _eligible(q.url, owner=USERS["bob"], workspace=WORKSPACES["Invoices"])
    assert set(run.run_config["ops"]["reindex_documents"]["config"]["document_ids"]) == wanted
    assert q.execute(run).success
    q.follow()
    row = q.row(rid)
    assert row["status"] == "done" and row["counts"]["completed"] == len(wanted) and row["counts"]["failed"] == 0
    assert row["counts"]["skipped"]["not_owner"] > 0 and len(row["run_ids"]) == 1
    assert q.tick() == []  # nothing due any more


def test_a_run_reports_its_progress_after_every_batch_and_the_queue_decides_from_it(q: Queue) -> None:
    from reindex_pipeline.db import run_progress
    from reindex_pipeline.reindex.runner import BATCH_SIZE

    rid = q.request(requested_by=USERS["admin"], scope="all")
    [run] = q.tick()
    planned = len(run.run_config["ops"]["reindex_documents"]["config"]["document_ids"])
    assert planned > 2 * BATCH_SIZE
    assert q.execute(run).success
    with psycopg.connect(q.url) as conn:
        row = conn.execute(
            "SELECT planned, completed, failed, reports, finished_at IS NOT NULL FROM reindex_run_progress "
            "WHERE request_id = %s",
            (rid,),
        ).fetchone()
        attempt = q.row(rid)["counts"]["attempt_tag"]
        so_far = run_progress.of_attempt(conn, rid, attempt)
    assert row[:3] == (planned, planned, 0) and row[4]
    assert row[3] >= planned // BATCH_SIZE  # a report per committed batch, not one at the end
    assert (so_far.runs, so_far.finished_runs, so_far.completed) == (1, 1, planned)
    q.follow()
    assert q.row(rid)["status"] == "done" and q.row(rid)["counts"]["completed"] == planned


def test_failing_runs_back_off_2_4_8_16_then_fail_and_can_be_requeued(q: Queue) -> None:
    q.policy = ReindexPolicy(operator_user_id=USERS["admin"], max_attempts=5)
    doc = sorted(_eligible(q.url))[0]
    rid = q.request(requested_by=USERS["admin"], scope="documents", document_ids=[doc])
    delays = []
    for attempt in range(5):
        [run] = q.tick()
        result = q.execute(run, embeddings=BrokenEmbeddingModel())
        assert not result.success
        if attempt == 0:  # the failed document is on its partitions' timeline, its previous index kept
            observed = [e.event_specific_data.asset_observation for e in result.get_asset_observation_events()]
            assert {(o.asset_key.path[-1], o.partition) for o in observed} >= {("chunk_embeddings", doc)}
            assert all(o.metadata["outcome"].value == "failed" for o in observed)
        q.follow()
        row = q.row(rid)
        if row["status"] == "pending":
            delays.append(round((row["scheduled_at"] - row["updated_at"]).total_seconds()))
            assert q.tick() == []  # not due before its backoff
            q.make_due(rid)
    assert delays == [2, 4, 8, 16]
    row = q.row(rid)
    assert row["status"] == "failed" and row["attempts"] == 5
    assert "embedding service timed out" in row["last_error"]

    with psycopg.connect(q.url) as conn:
        assert queue.requeue(conn, rid)
    [run] = q.tick()
    assert q.execute(run).success
    q.follow()
    assert q.row(rid)["status"] == "done"


def test_two_racing_claimers_take_each_of_200_rows_exactly_once(q: Queue) -> None:
    with psycopg.connect(q.url) as conn:
        for _ in range(200):
            queue.insert_request(
                conn, org_id=ORG, requested_by=USERS["admin"], scope="documents", document_ids=[], source="schedule"
            )
    claims: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claimer(name: str) -> None:
        with psycopg.connect(q.url) as conn:
            start.wait()
            while rows := queue.claim_due(conn, owner=name, limit=7):
                conn.commit()
                claims[name] += [r["id"] for r in rows]

    threads = [threading.Thread(target=claimer, args=(n,)) for n in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = claims["a"], claims["b"]
    assert len(a) + len(b) == 200 and len(set(a) | set(b)) == 200 and not set(a) & set(b)
    assert a and b, "both claimers should have got rows"


def test_a_running_row_with_an_expired_lease_is_reclaimed(q: Queue) -> None:
    rid = q.request(requested_by=USERS["admin"], scope="documents", document_ids=[sorted(_eligible(q.url))[0]])
    with psycopg.connect(q.url) as conn:
        assert [r["id"] for r in queue.claim_due(conn, owner="crashed-daemon")] == [rid]
        assert queue.launched(conn, rid, "crashed-daemon", "0-old", 1, {})
        assert queue.claim_due(conn, owner="other") == []  # leased: not claimable
        conn.execute("UPDATE reindex_queue SET lease_expires_at = now() - interval '1 second' WHERE id = %s", (rid,))
        reclaimed = queue.claim_due(conn, owner="new-daemon")
        conn.commit()
        # Until the new claim launches, the outcomes sensor does not follow the old claim's runs; the old
        # claimer, if it comes back, records nothing.
        assert "runs_expected" not in q.row(rid)["counts"]
        assert not queue.launched(conn, rid, "crashed-daemon", "0-late", 1, {})
        assert queue.launched(conn, rid, "new-daemon", "0-new", 1, {})
    assert [r["id"] for r in reclaimed] == [rid]
    row = q.row(rid)
    assert row["counts"]["reclaimed"] is True and row["lease_owner"] == "new-daemon"
    assert row["counts"]["attempt_tag"] == "0-new"


def test_rules_refuse_a_busy_workspace_and_a_second_request_within_a_minute(q: Queue) -> None:
    first = q.request(requested_by=USERS["admin"], scope="workspace", workspace_id=WORKSPACES["Receipts"])
    busy = q.request(requested_by=USERS["carol"], scope="workspace", workspace_id=WORKSPACES["Receipts"])
    again = q.request(requested_by=USERS["admin"], scope="documents", document_ids=[])
    runs = q.tick()
    assert len(runs) == 1 and q.row(first)["status"] == "running"
    assert q.row(busy)["status"] == "refused" and "already reindexing" in q.row(busy)["last_error"]
    assert q.row(again)["status"] == "refused" and "1 reindex request per user per minute" in q.row(again)["last_error"]
    with psycopg.connect(q.url) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM audit_events WHERE kind = 'reindex.refused'")]
    assert len(kinds) == 2


def test_of_many_rows_one_user_inserts_at_once_exactly_one_runs(q: Queue) -> None:
    doc = sorted(_eligible(q.url, owner=USERS["bob"]))[0]
    with psycopg.connect(q.url) as conn:  # one transaction: every row has the same created_at
        ids = [
            queue.insert_request(conn, org_id=ORG, requested_by=USERS["bob"], scope="documents", document_ids=[doc])
            for _ in range(5)
        ]
    assert len(q.tick()) == 1
    statuses = sorted(q.row(i)["status"] for i in ids)
    assert statuses == ["refused"] * 4 + ["running"]
    assert all("per user per minute" in q.row(i)["last_error"] for i in ids if q.row(i)["status"] == "refused")


def test_an_admin_of_another_organisation_is_refused_and_reaches_nothing(q: Queue) -> None:
    with psycopg.connect(q.url) as conn:
        other = conn.execute("INSERT INTO organizations (name, slug) VALUES ('B', 'b') RETURNING id::text")
        other = other.fetchone()[0]
        foreign = conn.execute(
            "INSERT INTO users (org_id, username, email, role) VALUES (%s, 'mallory', 'm@b.example', 'admin') "
            "RETURNING id::text",
            (other,),
        ).fetchone()[0]
    doc = sorted(_eligible(q.url))[0]
    into_ours = q.request(requested_by=foreign, scope="documents", document_ids=[doc])  # a row naming our org
    own_org = q.request(org_id=other, requested_by=foreign, scope="all")  # "all": of the deployment?
    assert q.tick() == []
    row = q.row(into_ours)
    assert row["status"] == "refused" and "mallory belongs to another organisation" in row["last_error"]
    assert q.row(own_org)["status"] == "done" and q.row(own_org)["counts"]["eligible"] == 0
    assert q.row(own_org)["counts"]["skipped"] == {}


def test_inactive_requester_and_dry_run_write_nothing(q: Queue) -> None:
    refused = q.request(requested_by=USERS["erin"], scope="all")
    dry = q.request(requested_by=USERS["carol"], scope="all", dry_run=True)
    assert q.tick() == []
    assert q.row(refused)["status"] == "refused" and "inactive" in q.row(refused)["last_error"]
    row = q.row(dry)
    assert row["status"] == "done" and row["counts"]["dry_run"] is True
    assert row["counts"]["preview"].endswith("documents that you own across all workspaces.")
    with psycopg.connect(q.url) as conn:
        assert conn.execute("SELECT count(*) FROM documents_data").fetchone()[0] == 0


def test_backoff_and_rules_as_pure_functions() -> None:
    assert [backoff_seconds(n) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert after_failure(0, 4, now).status == "pending" and after_failure(3, 4, now).status == "failed"
    assert after_failure(1, 4, now).scheduled_at == now + timedelta(seconds=4)
    from reindex_pipeline.domain.queue_rules import ActiveRequest

    ws = [ActiveRequest("r1", "workspace", "w1")]
    assert "waits" in refusal_reason("all", None, "u", ws, None, now)
    assert refusal_reason("workspace", "w2", "u", ws, None, now) is None
    assert "global" in refusal_reason("workspace", "w2", "u", [ActiveRequest("r2", "all", None)], None, now)
    assert refusal_reason("documents", None, "u", [], now - timedelta(seconds=61), now) is None
    ran = {"done": 1, "running": 1, "failed": 4, "refused": 0}  # done at the first try was "try 0" in history
    assert {status: tries(status, 4 if status == "failed" else 0) for status in ran} == ran and tries("done", 2) == 3
    grace = RUN_CREATION_GRACE_S
    assert runs_lost(0, 3, 1000.0, 1001.0 + grace) and not runs_lost(0, 3, 1000.0, 999.0 + grace)
    assert not runs_lost(3, 3, 1000.0, 1001.0 + grace) and not runs_lost(0, 3, None, 1e12)


def test_run_sizes_few_runs_under_the_cap_balanced_and_one_per_parallel_slot_when_worth_it() -> None:
    assert run_sizes(0, 2500) == []
    assert run_sizes(744, 2500) == [744]
    assert run_sizes(2959, 2500) == [1480, 1479]  # not 2500 + 459
    assert run_sizes(5000, 2500) == [2500, 2500] and run_sizes(5001, 2500) == [1667, 1667, 1667]
    assert run_sizes(2959, 1000) == [987, 986, 986]
    assert run_sizes(1000, 2500, parallel_runs=4) == [250] * 4  # a Qdrant server's four slots all work
    assert run_sizes(250, 2500, parallel_runs=4) == [125, 125]  # no run under 100 documents to fill a slot
    assert run_sizes(50, 2500, parallel_runs=4) == [50]
    assert run_sizes(12_000, 2500, parallel_runs=4) == [2400] * 5
    for documents, cap, parallel in [(1, 1, 1), (99, 7, 3), (10_001, 2500, 8), (123_457, 1000, 16)]:
        sizes = run_sizes(documents, cap, parallel)
        assert sum(sizes) == documents and max(sizes) <= cap and max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        run_sizes(10, 0)


def test_schedule_requests_every_eligible_document_and_a_later_user_request_runs_first(q: Queue) -> None:
    from reindex_pipeline.defs.schedule import build_full_reindex_schedule

    schedule = build_full_reindex_schedule("0 3 * * 0")
    context = dg.build_schedule_context(
        instance=q.instance, resources=q.resources(), scheduled_execution_time=datetime(2026, 11, 22, 3, tzinfo=UTC)
    )
    skip = schedule.evaluate_tick(context)
    assert "queued full reindex request" in skip.skip_message
    bob_docs = sorted(_eligible(q.url, owner=USERS["bob"]))[:2]
    user = q.request(requested_by=USERS["bob"], scope="documents", document_ids=bob_docs)

    runs = q.tick()
    assert [r.tags["reindex/source"] for r in runs] == ["app", "schedule"]  # claimed in priority order
    assert int(runs[0].tags["dagster/priority"]) > int(runs[1].tags["dagster/priority"])
    scheduled_config = runs[1].run_config["ops"]["reindex_documents"]["config"]
    assert set(scheduled_config["document_ids"]) == _eligible(q.url)
    assert scheduled_config["requester_id"] == USERS["admin"]
    assert (
        scheduled_config["stale_only"] is True
        and runs[0].run_config["ops"]["reindex_documents"]["config"]["stale_only"] is False
    )  # the schedule skips what is up to date; a person's request reindexes
    assert q.row(user)["status"] == "running"


def test_a_busy_scheduled_global_reindex_waits_instead_of_being_refused(q: Queue) -> None:
    q.request(requested_by=USERS["admin"], scope="workspace", workspace_id=WORKSPACES["Invoices"])
    q.tick()
    scheduled = q.request(requested_by=None, scope="all", source="schedule")
    assert q.tick() == []
    row = q.row(scheduled)
    assert row["status"] == "pending" and "waits" in row["last_error"] and row["scheduled_at"] > row["updated_at"]


def test_the_table_itself_refuses_rows_no_sensor_could_read(q: Queue) -> None:
    """A non-UUID or unknown requester and an unknown scope never become rows: the app gets the database's error."""
    cases = [
        ({"requested_by": "not-a-uuid", "scope": "all"}, psycopg.errors.InvalidTextRepresentation),
        ({"requested_by": str(uuid.uuid4()), "scope": "all"}, psycopg.errors.ForeignKeyViolation),
        ({"requested_by": USERS["admin"], "scope": "everything"}, psycopg.errors.CheckViolation),
    ]
    for row, error in cases:
        with pytest.raises(error), psycopg.connect(q.url) as conn:
            queue.insert_request(conn, org_id=ORG, **row)
    with psycopg.connect(q.url) as conn:
        assert conn.execute("SELECT count(*) FROM reindex_queue").fetchone()[0] == 0


def test_a_large_request_is_cut_into_runs_that_name_their_documents_without_ranges_or_checks(q: Queue) -> None:
    """A queue run names its documents in its config and carries no partition range (Dagster would resolve it
    against every partition and plan each one when it creates the run) and no consistency checks."""
    q.policy = ReindexPolicy(operator_user_id=USERS["admin"], max_documents_per_run=10)
    q.request(requested_by=USERS["admin"], scope="all")
    runs = q.tick()
    sizes, covered = [], []
    for run in runs:
        ids = run.run_config["ops"]["reindex_documents"]["config"]["document_ids"]
        assert len(ids) <= 10 and run.asset_check_keys == [] and run.partition_key is None
        assert not any(tag.startswith("dagster/asset_partition_range") for tag in run.tags)
        sizes.append(len(ids))
        covered += ids
    assert len(runs) == -(-len(_eligible(q.url)) // 10) and max(sizes) - min(sizes) <= 1
    assert sorted(covered) == sorted(_eligible(q.url))  # every eligible document in exactly one run
    result = q.execute(runs[0])
    assert result.success
    first = set(runs[0].run_config["ops"]["reindex_documents"]["config"]["document_ids"])
    for key in ("extracted_data", "chunk_embeddings", "graph_entities"):  # each on its document's partition
        assert first <= q.instance.get_materialized_partitions(dg.AssetKey(key))


def test_a_request_whose_runs_never_came_is_claimed_again_with_a_new_attempt(q: Queue) -> None:
    """A tick that planned a request and then never returned its runs (it timed out, its daemon died) leaves the
    row running with no runs: past the grace for run creation the outcomes sensor stops renewing its lease, and
    the queue claims it again under a fresh attempt tag."""
    rid = q.request(requested_by=USERS["admin"], scope="all")
    lost = q.tick()  # planned, its runs dropped on the floor
    assert lost and q.row(rid)["status"] == "running"
    first_attempt = q.row(rid)["counts"]["attempt_tag"]
    q.follow()  # within the grace: still waiting for the daemon
    renewed = q.row(rid)["lease_expires_at"]
    with psycopg.connect(q.url) as conn:
        conn.execute(
            "UPDATE reindex_queue SET counts = jsonb_set(counts, '{planned_at}', to_jsonb(extract(epoch FROM now())"
            " - %s)) WHERE id = %s",
            (RUN_CREATION_GRACE_S + 1, rid),
        )
    q.follow()
    assert q.row(rid)["lease_expires_at"] == renewed  # no longer renewed
    assert q.tick() == []  # leased: not claimed before the lease expires
    with psycopg.connect(q.url) as conn:
        conn.execute("UPDATE reindex_queue SET lease_expires_at = now() - interval '1 second' WHERE id = %s", (rid,))
    again = q.tick()
    attempt = q.row(rid)["counts"]["attempt_tag"]
    assert attempt != first_attempt and {r.tags["reindex/attempt"] for r in again} == {attempt}
    assert sorted(i for r in again for i in r.run_config["ops"]["reindex_documents"]["config"]["document_ids"]) == (
        sorted(_eligible(q.url))
    )
    assert all(q.execute(r).success for r in again)
    q.follow()
    assert q.row(rid)["status"] == "done"


def test_only_documents_named_one_by_one_get_their_partitions_from_the_queue(q: Queue) -> None:
    """A restore's documents may be newer than the partition sync; a workspace's or everyone's are the sync's
    (checking every key of a million-document request took the tick past its 60 s)."""
    eligible = sorted(_eligible(q.url))
    q.instance.delete_dynamic_partition("documents", eligible[0])
    q.instance.delete_dynamic_partition("documents", eligible[1])
    q.request(requested_by=USERS["admin"], scope="all")
    runs = q.tick()
    assert not q.instance.has_dynamic_partition("documents", eligible[0])
    assert all(q.execute(r).success for r in runs)  # a run needs no partition to exist: its config names the ids
    assert eligible[0] in q.instance.get_materialized_partitions(dg.AssetKey("extracted_data"))
    q.request(requested_by=None, scope="restore", document_ids=[eligible[1]], source="restore")
    assert q.tick()
    assert q.instance.has_dynamic_partition("documents", eligible[1])


def test_restores_with_the_same_phases_share_runs_and_the_others_run_alone() -> None:
    def row(i: str, scope: str = "restore", phases=("extraction",), dry_run=False, org="o1", by=None) -> dict:
        return {
            "id": i,
            "scope": scope,
            "phases": list(phases),
            "dry_run": dry_run,
            "stale_only": False,
            "org_id": org,
            "requested_by": by,
        }

    rows = [
        row("a"),
        row("w", "workspace"),
        row("b"),
        row("c", phases=("graphrag_indexing",)),
        row("d", dry_run=True),
        row("e", org="o2"),  # another organisation: its own runs, its own audit
        row("f", by="u1"),
    ]
    assert [[r["id"] for r in g] for g in sharing_runs(rows)] == [["a", "b"], ["w"], ["c"], ["d"], ["e"], ["f"]]
    assert own_failures(["x", "y", "z"], ["z", "x", "q"]) == ["x", "z"] and own_failures(["x"], None) == []
    one = requests.Launch(["d1", "d2"], {"workspace_id": "w1", "phases": ["extraction"]}, ["extraction"], {})
    two = requests.Launch(["d2", "d3"], {"workspace_id": "w2", "phases": ["extraction"]}, ["extraction"], {})
    both = requests.together([one, two])
    assert both.eligible_ids == ["d1", "d2", "d3"] and both.config["workspace_id"] is None
    assert requests.together([one, one]).config["workspace_id"] == "w1" and requests.together([one]) is one


@dg.op
def _waits() -> None:
    pass


@dg.job(tags={"reindex/source": "restore"})
def _a_restore_reindex() -> None:
    _waits()


def test_restores_queued_while_one_of_their_runs_waits_go_in_one_run_and_each_ends_done(q: Queue) -> None:
    docs = sorted(_eligible(q.url, workspace=WORKSPACES["Invoices"]))[:3]
    other = sorted(_eligible(q.url, workspace=WORKSPACES["Receipts"]))[:2]
    assert len(docs) == 3 and len(other) == 2
    # A restore's run is created, not started (queued for its slot): restores wait, a person's request does not.
    waiting = q.instance.create_run_for_job(
        _a_restore_reindex,
        status=dg.DagsterRunStatus.NOT_STARTED,
        tags={REQUEST_TAG: "earlier", "reindex/source": "restore", QUEUE_SOURCE_TAG: "restore"},
    )
    # A restore's ingest run waiting too (it serves no request) holds nothing back.
    q.instance.create_run_for_job(
        _a_restore_reindex, status=dg.DagsterRunStatus.NOT_STARTED, tags={"reindex/source": "restore"}
    )
    assert restore_run_waiting(q.instance) and not restore_run_waiting(q.instance, within_s=0)
    ids = [
        q.request(
            requested_by=None,
            scope="restore",
            workspace_id=WORKSPACES["Invoices"],
            document_ids=docs[:2],
            source="restore",
        ),
        q.request(
            requested_by=None,
            scope="restore",
            workspace_id=WORKSPACES["Invoices"],
            document_ids=docs[2:],
            source="restore",
        ),
        q.request(
            requested_by=None,
            scope="restore",
            workspace_id=WORKSPACES["Receipts"],
            document_ids=other,
            source="restore",
        ),
    ]
    person = q.request(requested_by=USERS["admin"], scope="documents", document_ids=other[:1])
    [alone] = q.tick()
    assert alone.tags[REQUEST_TAG] == person and all(q.row(i)["status"] == "pending" for i in ids)
    q.instance.report_run_failed(waiting)  # the waiting run is gone: the restores go, in one run
    [shared] = q.tick()
    config = shared.run_config["ops"]["reindex_documents"]["config"]
    assert shared.tags[REQUEST_TAG] == ids[0] and config["workspace_id"] is None
    assert sorted(config["document_ids"]) == sorted(docs + other)
    assert all(q.row(i)["status"] == "running" for i in ids)
    assert q.execute(shared).success and q.execute(alone).success
    q.follow()
    for i in ids:
        row = q.row(i)
        assert row["status"] == "done" and row["counts"]["carrier"] == ids[0] and row["counts"]["shared_runs"]
        assert row["counts"]["failed"] == 0 and len(row["run_ids"]) == 1
    assert q.row(person)["status"] == "done" and not q.row(person)["counts"].get("carrier")


class FailsOnOneDocument(EmbeddingModel):
    """Fault injection at the model boundary: a call embedding any chunk of one document fails."""

    poisoned: list[str]

    def embedder(self):
        real, poisoned = super().embedder(), set(self.poisoned)

        class Embedder:
            model, dimensions = real.model, real.dimensions

            def embed(self, texts):
                if poisoned & set(texts):
                    raise TimeoutError("embedding service timed out")
                return real.embed(texts)

        return Embedder()


def test_a_document_failing_in_shared_runs_retries_only_its_own_request(q: Queue) -> None:
    docs = sorted(_eligible(q.url, workspace=WORKSPACES["Invoices"]))[:4]
    with psycopg.connect(q.url) as conn:
        chunks = [r[0] for r in conn.execute("SELECT chunk_content FROM chunks WHERE document_id = %s", (docs[3],))]
    assert chunks
    ids = [
        q.request(requested_by=None, scope="restore", document_ids=docs[:2], source="restore"),
        q.request(requested_by=None, scope="restore", document_ids=docs[2:], source="restore"),
    ]
    [shared] = q.tick()
    assert not q.execute(shared, embeddings=FailsOnOneDocument(poisoned=chunks)).success
    q.follow()
    ok, failing = q.row(ids[0]), q.row(ids[1])
    assert ok["status"] == "done" and ok["counts"]["completed"] == 2 and ok["counts"]["failed"] == 0
    assert ok["counts"]["shared_totals"]["failed"] == 1 and ok["counts"]["unchanged"] is None
    assert failing["status"] == "pending" and [str(d) for d in failing["document_ids"]] == [docs[3]]
    assert failing["counts"]["failed"] == 1 and failing["counts"]["completed"] == 1
    assert failing["last_error"].startswith(f"{docs[3]}: ") and docs[2] not in failing["last_error"]
    q.make_due(ids[1])
    [again] = q.tick()  # alone now: only its failed document
    assert again.tags[REQUEST_TAG] == ids[1]
    assert again.run_config["ops"]["reindex_documents"]["config"]["document_ids"] == [docs[3]]
    assert q.execute(again).success
    q.follow()
    row = q.row(ids[1])
    assert row["status"] == "done" and row["counts"]["failed"] == 0 and row["counts"]["completed"] == 1
    assert not row["counts"]["carrier"] and "shared_totals" not in row["counts"]
