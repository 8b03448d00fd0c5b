"""tasks/photo-gate: the shipped photo-authenticity TaskProvider is valid and reads the
metric names the photo tools write."""

from __future__ import annotations

from typing import Any

import yaml

from slipway.api.taskprovider import TaskProviderSpec
from tests.photo_tools import TASKS, images, inline, module


def gate() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (TASKS / "photo-gate" / "taskprovider.yaml").read_text()
    )
    return document


def test_the_shipped_gate_is_a_valid_taskprovider() -> None:
    """tasks/photo-gate/taskprovider.yaml reads as a TaskProvider spec for the task evaluate."""
    spec = TaskProviderSpec.model_validate(gate()["spec"])
    assert spec.task == "evaluate"


def test_every_source_path_names_a_metric_a_tool_writes() -> None:
    """Each `$.task.metric` of the gate's data source is a key of that tool's output."""
    photo = inline(images().unedited_photo())
    metadata = module("extract-metadata").decide(photo)["extract-metadata"]
    outputs = {
        "extract-metadata": metadata,
        "geolookup": module("geolookup").decide({"extract-metadata": metadata})["geolookup"],
        "author-search": {
            "known_author_match": False,
            "nearest_copy_distance": 0,
            "matches": 0,
        },
    }
    for path in gate()["spec"]["evaluation"]["sources"]["data"].values():
        _, task, metric = path.split(".")
        assert metric in outputs[task], path
