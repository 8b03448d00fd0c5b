"""Slipway: a workflow engine inside Kubernetes (Shipyards, TaskProviders, SequenceRuns)."""

__version__ = "0.1.0"
