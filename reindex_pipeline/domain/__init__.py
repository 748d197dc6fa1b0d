"""The ground floor: pure domain code that imports nothing of the project.

``selection`` (eligibility and RBAC), ``queue_rules`` (admission, backoff, run sizes), ``fingerprints`` (what
produced each index: phase names and hashes) and ``extraction`` (the extraction schema). Every other package
may import from here; nothing here imports from them (``test_layers`` checks it).
"""
