"""Kubernetes I/O shared by handlers, gateway and providers: one async client, idempotent writes."""
