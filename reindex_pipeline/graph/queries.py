"""Every Cypher statement the project runs, and nothing else.

Data statements are shared by FalkorDB and Neo4j, so they keep to the Cypher both accept
(no ``elementId()``, ``datetime()``, ``CALL {} IN TRANSACTIONS``, APOC, dynamic labels or
``EXISTS {}`` subqueries). Schema setup differs per backend and is idempotent on both.
Every value is a parameter; the only text formatted into a statement is from the constant
tuples below, never user or model text.

The lexical graph (one document's slice):
``(:Document)-[:HAS_CHUNK]->(:Chunk)-[:MENTIONS]->(:Entity)`` plus typed relations between
entities. Entities are shared across documents (keyed by type and normalised name); chunks never are.

A document pass is blue/green: its chunks (ids carry the pass), mentions and relations are written
NEXT TO the previous pass's, the Document node's properties are set last, and only then are the
previous pass's parts deleted. A pass that fails is removed (``DELETE_PASS``) and the previous pass
stays exactly as it was; readers always see at least one complete pass.
"""

from __future__ import annotations

# -- schema -----------------------------------------------------------------------------------------
#: (label, property) pairs that get a unique key / index.
KEYED_NODES: tuple[tuple[str, str], ...] = (
    ("Document", "id"),
    ("Chunk", "id"),
    ("Entity", "key"),
)
#: Extra lookups that are not keys.
INDEXED_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("Chunk", "document_id"),
    ("Entity", "type"),
)

#: Relation types between entities. A statement per type, because Cypher cannot take a type as a parameter.
RELATION_TYPES: tuple[str, ...] = (
    "ISSUED",
    "BILLED_TO",
    "INCLUDES",
    "PAID_IN",
    "DATED",
    "DUE_ON",
    "HAS_SUBTOTAL",
    "HAS_TAX",
    "HAS_TOTAL",
)

#: Relations are found by the document that stated them through an index per type, never by a scan.
INDEXED_RELATION_PROPERTIES: tuple[tuple[str, str], ...] = tuple((t, "document_id") for t in RELATION_TYPES)

#: FalkorDB: list what exists, then create only what is missing (its CREATE INDEX is not idempotent).
FALKOR_LIST_INDEXES = "CALL db.indexes() YIELD label, properties, entitytype RETURN label, properties, entitytype"
FALKOR_CREATE_INDEX = "CREATE INDEX FOR (n:{label}) ON (n.{prop})"
FALKOR_CREATE_RELATION_INDEX = "CREATE INDEX FOR ()-[r:{rel_type}]-() ON (r.{prop})"


def neo4j_schema_statements() -> list[str]:
    """Neo4j 5: constraints for keys, range indexes for lookups, all ``IF NOT EXISTS``."""
    statements = [
        f"CREATE CONSTRAINT {label.lower()}_{prop}_unique IF NOT EXISTS FOR (n:{label}) REQUIRE n.{prop} IS UNIQUE"
        for label, prop in KEYED_NODES
    ]
    statements += [
        f"CREATE INDEX {label.lower()}_{prop} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"
        for label, prop in INDEXED_PROPERTIES
    ]
    statements += [
        f"CREATE INDEX rel_{rel_type.lower()}_{prop} IF NOT EXISTS FOR ()-[r:{rel_type}]-() ON (r.{prop})"
        for rel_type, prop in INDEXED_RELATION_PROPERTIES
    ]
    return statements


# -- writes for one document pass ---------------------------------------------------------------------
ENSURE_DOCUMENT = "MERGE (d:Document {id: $document_id})"

#: Last write of a pass: it becomes the document's current pass. Returns the relation types the previous
#: pass wrote, so that cleanup asks only about those (null for a document written before they were recorded).
SET_DOCUMENT_PROPERTIES = """
MATCH (d:Document {id: $document_id})
WITH d, d.relation_types AS previous
SET d += $properties, d.pass_id = $pass_id, d.relation_types = $relation_types
RETURN previous
"""

UPSERT_CHUNKS = """
MATCH (d:Document {id: $document_id})
UNWIND $chunks AS c
MERGE (ch:Chunk {id: c.id})
SET ch.document_id = $document_id, ch.chunk_index = c.chunk_index, ch.text = c.text,
    ch.content_sha256 = c.content_sha256, ch.pass_id = $pass_id
MERGE (d)-[r:HAS_CHUNK]->(ch)
SET r.pass_id = $pass_id
"""

UPSERT_MENTIONS = """
UNWIND $mentions AS m
MATCH (ch:Chunk {id: m.chunk_id})
MERGE (e:Entity {key: m.key})
ON CREATE SET e.name = m.name, e.type = m.type
MERGE (ch)-[r:MENTIONS]->(e)
SET r.pass_id = $pass_id
"""

_UPSERT_RELATION = """
UNWIND $relations AS rel
MATCH (a:Entity {{key: rel.source}})
MATCH (b:Entity {{key: rel.target}})
MERGE (a)-[r:{rel_type} {{document_id: $document_id, pass_id: $pass_id}}]->(b)
"""

UPSERT_RELATION: dict[str, str] = {t: _UPSERT_RELATION.format(rel_type=t) for t in RELATION_TYPES}

# -- cleanup: every statement starts from the document's own nodes or an indexed key, never a scan, so what
# it reads depends on the document's size, not on the size of the graph.

#: Entities the documents' chunks mention, and whether from each document's given pass (the live one after a
#: commit, the failed one in a drop): the only candidates for orphan removal are those a removed pass mentions
#: and the kept one does not.
#: The cleanup after passes go live takes many documents per statement (``$documents``: document_id and the
#: live pass_id each): FalkorDB's cost of a statement that deletes grows with the graph, whatever it deletes,
#: so a batch of documents shares one.
MENTIONED_KEYS = """
UNWIND $documents AS doc
MATCH (ch:Chunk {document_id: doc.document_id})-[:MENTIONS]->(e:Entity)
RETURN DISTINCT doc.document_id AS document_id, e.key AS key, ch.pass_id = doc.pass_id AS in_pass
"""

#: After passes are live: drop the chunks (and their mentions) earlier passes wrote.
DELETE_STALE_CHUNKS = """
UNWIND $documents AS doc
MATCH (ch:Chunk {document_id: doc.document_id})
WHERE ch.pass_id <> doc.pass_id
DETACH DELETE ch
"""

_DELETE_STALE_RELATIONS = """
UNWIND $documents AS doc
MATCH ()-[r:{rel_type}]->()
WHERE r.document_id = doc.document_id AND r.pass_id <> doc.pass_id
DELETE r
"""
DELETE_STALE_RELATIONS: dict[str, str] = {t: _DELETE_STALE_RELATIONS.format(rel_type=t) for t in RELATION_TYPES}

#: Of the given entities, those no chunk mentions any more. The check reads the entity's incoming
#: mentions, so the writer only asks it about entities that the document stopped mentioning.
DELETE_ORPHANS_AMONG = """
UNWIND $keys AS key
MATCH (e:Entity {key: key})
WHERE NOT (e)<-[:MENTIONS]-(:Chunk)
DETACH DELETE e
"""

#: Remove everything one (failed) pass wrote; the previous pass is untouched.
DELETE_PASS_CHUNKS = """
MATCH (ch:Chunk {document_id: $document_id})
WHERE ch.pass_id = $pass_id
DETACH DELETE ch
"""

_DELETE_PASS_RELATIONS = """
MATCH ()-[r:{rel_type}]->()
WHERE r.document_id = $document_id AND r.pass_id = $pass_id
DELETE r
"""
DELETE_PASS_RELATIONS: dict[str, str] = {t: _DELETE_PASS_RELATIONS.format(rel_type=t) for t in RELATION_TYPES}

# -- purge: a deleted document's whole slice, many documents per statement.
PURGE_MENTIONED_KEYS = """
UNWIND $document_ids AS doc
MATCH (ch:Chunk {document_id: doc})-[:MENTIONS]->(e:Entity)
RETURN DISTINCT e.key AS key
"""

PURGE_CHUNKS = """
UNWIND $document_ids AS doc
MATCH (ch:Chunk {document_id: doc})
DETACH DELETE ch
"""

_PURGE_RELATIONS = """
UNWIND $document_ids AS doc
MATCH ()-[r:{rel_type}]->()
WHERE r.document_id = doc
DELETE r
"""
PURGE_RELATIONS: dict[str, str] = {t: _PURGE_RELATIONS.format(rel_type=t) for t in RELATION_TYPES}

PURGE_DOCUMENTS = """
UNWIND $document_ids AS doc
MATCH (d:Document {id: doc})
DETACH DELETE d
"""

#: Owner / workspace of documents changed in the source: their Document nodes follow.
SET_ACCESS = """
UNWIND $documents AS row
MATCH (d:Document {id: row.id})
SET d.owner_id = row.owner_id, d.workspace_id = row.workspace_id
"""

# -- reads ------------------------------------------------------------------------------------------
GET_DOCUMENT = "MATCH (d:Document {id: $document_id}) RETURN properties(d) AS properties"

GET_CHUNKS = """
MATCH (d:Document {id: $document_id})-[:HAS_CHUNK]->(ch:Chunk)
RETURN ch.id AS id, ch.chunk_index AS chunk_index, ch.text AS text, ch.pass_id AS pass_id
ORDER BY ch.chunk_index
"""

#: A document's chunk nodes: all of them, and those of its live pass (consistency checks).
COUNT_CHUNK_PASSES = """
MATCH (ch:Chunk {document_id: $document_id})
OPTIONAL MATCH (d:Document {id: $document_id})
RETURN count(ch) AS total, sum(CASE WHEN ch.pass_id = d.pass_id THEN 1 ELSE 0 END) AS live
"""

COUNT_DOCUMENT_GRAPH = """
MATCH (d:Document {id: $document_id})
OPTIONAL MATCH (d)-[:HAS_CHUNK]->(ch:Chunk)
OPTIONAL MATCH (ch)-[m:MENTIONS]->(:Entity)
RETURN count(DISTINCT ch) AS chunks, count(m) AS mentions
"""

DOCUMENT_SLICE = """
MATCH (d:Document {id: $document_id})
OPTIONAL MATCH (d)-[:HAS_CHUNK]->(ch:Chunk)
OPTIONAL MATCH (ch)-[:MENTIONS]->(e:Entity)
RETURN properties(d) AS document, ch.id AS chunk, ch.text AS text, ch.pass_id AS pass_id, e.key AS entity
ORDER BY chunk, entity
"""

#: A document's relations (tests and checks; a scan of one document's relations per type).
_DOCUMENT_RELATIONS = """
MATCH (a:Entity)-[r:{rel_type}]->(b:Entity)
WHERE r.document_id = $document_id
RETURN a.key AS source, type(r) AS type, b.key AS target, r.pass_id AS pass_id
"""
DOCUMENT_RELATIONS: dict[str, str] = {t: _DOCUMENT_RELATIONS.format(rel_type=t) for t in RELATION_TYPES}

#: The store-wide audit: chunk nodes per document, and Document nodes with their live chunk count.
ALL_DOCUMENT_CHUNKS = "MATCH (c:Chunk) RETURN c.document_id AS document_id, count(c) AS chunks"
ALL_DOCUMENT_NODES = """
MATCH (d:Document)
OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c:Chunk)
WHERE c.pass_id = d.pass_id
RETURN d.id AS document_id, d.owner_id AS owner_id, d.workspace_id AS workspace_id, count(c) AS live_chunks
"""


GRAPH_SNAPSHOT = """
MATCH (n)
OPTIONAL MATCH (n)-[r]->(m)
RETURN labels(n) AS labels, properties(n) AS properties, type(r) AS rel, properties(r) AS rel_properties,
       properties(m) AS target
"""
