"""The document partitions: one dynamic partition per document id."""

import dagster as dg

documents = dg.DynamicPartitionsDefinition(name="documents")


def apply_requests(instance: dg.DagsterInstance, requests: list | None) -> None:
    """Apply a sensor's dynamic-partition requests to an instance, as the daemon does (tests, benchmarks)."""
    for request in requests or []:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
