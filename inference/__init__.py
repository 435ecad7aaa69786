"""Scoring your own footage: bundles (fit once), streaming prediction, events, overlays, export (no Prefect)."""
