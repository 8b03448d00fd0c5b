"""Reads the web page's routes share: every object of a kind, in one namespace or all.
(Who a caller is and what they may do is `slipway.gateway.auth.KubernetesAuthorizer`'s.)"""

from __future__ import annotations

from slipway.kube.client import Body, Kube


async def list_everywhere(kube: Kube, plural: str, namespace: str | None) -> list[Body]:
    """Every object of `plural` in `namespace`, or in every namespace when None."""
    items, _ = await kube.list_with_version(plural, namespace)
    return items
