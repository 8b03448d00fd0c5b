"""Status merge patches computed from two versions of a status model."""

from __future__ import annotations

from typing import Any

from slipway.api.common import StatusModel

Patch = dict[str, Any]


def status_patch(old: StatusModel, new: StatusModel) -> Patch:
    """A JSON merge patch taking the status `old` to `new`, top-level field by field: each
    changed field carries its whole new value (lists such as `tasks`, `providers` and
    `conditions` are written whole, as a merge patch replaces lists anyway); a field unset in
    `new` but set in `old` becomes null (deleted). Empty when nothing changed.

    Maps such as `data` are written whole too; the API server merges them with what is stored,
    which gives the same map since the engine's maps only grow (deep merge adds or replaces,
    never removes) — except a key whose new value is null, which a merge patch deletes."""
    before = old.to_wire()
    after = new.to_wire()
    patch: Patch = {key: value for key, value in after.items() if before.get(key) != value}
    patch.update({key: None for key in before if key not in after})
    return patch
