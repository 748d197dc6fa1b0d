"""The document partitions: one dynamic partition per document id."""

import dagster as dg

documents = dg.DynamicPartitionsDefinition(name="documents")
