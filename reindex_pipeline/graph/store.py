"""Graph backends: FalkorDB (embedded default) and Neo4j (``NEO4J_URI``), one interface.

Both run the data statements of :mod:`reindex_pipeline.graph.queries` unchanged; only schema setup
differs. Rows come back as dicts keyed by the statement's ``RETURN`` names.
"""

from __future__ import annotations

from typing import Any, Protocol

from reindex_pipeline.graph import queries

GRAPH_NAME = "reindex"


class GraphStore(Protocol):
    def run(self, statement: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def ensure_schema(self) -> None: ...
    def close(self) -> None: ...


class FalkorGraph:
    """A FalkorDB graph over the redis protocol (never FalkorDB's Bolt port with the neo4j driver)."""

    def __init__(self, host: str, port: int, graph: str = GRAPH_NAME, password: str | None = None):
        from falkordb import FalkorDB

        self._db = FalkorDB(host=host, port=port, password=password)
        self._graph = self._db.select_graph(graph)

    def run(self, statement: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self._graph.query(statement, params or {})
        names = [column[1] for column in (result.header or [])]
        return [dict(zip(names, row, strict=True)) for row in result.result_set or []]

    def explain(self, statement: str, params: dict[str, Any] | None = None) -> str:
        """The execution plan FalkorDB would use (tests check that cleanups start from an index)."""
        return str(self._graph.explain(statement, params or {}))

    def ensure_schema(self) -> None:
        """Create the missing indexes. Safe when several runs do it at once: an index another run created
        between our listing and our CREATE is fine."""
        wanted = [
            *(
                (("NODE", label, prop), queries.FALKOR_CREATE_INDEX.format(label=label, prop=prop))
                for label, prop in (*queries.KEYED_NODES, *queries.INDEXED_PROPERTIES)
            ),
            *(
                (("RELATIONSHIP", rel, prop), queries.FALKOR_CREATE_RELATION_INDEX.format(rel_type=rel, prop=prop))
                for rel, prop in queries.INDEXED_RELATION_PROPERTIES
            ),
        ]
        existing = self._indexes()
        for index, statement in wanted:
            if index in existing:
                continue
            try:
                self.run(statement)
            except Exception:  # the client raises redis' ResponseError, sometimes without a message
                existing = self._indexes()
                if index not in existing:
                    raise

    def _indexes(self) -> set[tuple[str, str, str]]:
        return {
            (row["entitytype"], row["label"], prop)
            for row in self.run(queries.FALKOR_LIST_INDEXES)
            for prop in row["properties"]
        }

    def delete_all(self) -> None:
        """Drop the whole graph (tests and `reset`); a missing graph is fine."""
        try:
            self._graph.delete()
        except Exception as exc:  # the client raises a bare ResponseError for a missing graph
            if "empty key" not in str(exc).lower() and "invalid graph" not in str(exc).lower():
                raise

    def close(self) -> None:
        self._db.connection.close()


class Neo4jGraph:
    """Neo4j through the official driver."""

    def __init__(self, uri: str, user: str, password: str | None, database: str = "neo4j"):
        import neo4j

        self._driver = neo4j.GraphDatabase.driver(uri, auth=(user, password or ""))
        self._database = database

    def run(self, statement: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        records, _, _ = self._driver.execute_query(statement, params or {}, database_=self._database)
        return [record.data() for record in records]

    def ensure_schema(self) -> None:
        for statement in queries.neo4j_schema_statements():
            self.run(statement)

    def close(self) -> None:
        self._driver.close()
