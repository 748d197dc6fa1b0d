"""A template-free offline extractor for invoices and receipts (pure functions, no I/O).

``text`` turns pages into lines of positioned segments, ``labels`` holds the multilingual vocabulary,
``amounts`` and ``dates`` read values with ``price-parser``/``babel`` and ``dateparser``, ``parties``
finds the issuer and the customer, ``items`` the line-item table, and ``extractor`` weighs the
candidates into an :class:`~reindex_pipeline.domain.extraction.Extraction` with a confidence per field.
"""
