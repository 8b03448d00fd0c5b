"""Pydantic models of every custom resource: the single source of truth of the API."""
