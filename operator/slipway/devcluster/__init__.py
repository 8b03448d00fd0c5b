"""The local control plane for development and tests (etcd, API server, controllers, kwok)."""
