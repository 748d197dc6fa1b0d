"""Calls to an OpenAI-compatible API: paced under its rate limits (``pacing``), retried in one place
(``calls``)."""
