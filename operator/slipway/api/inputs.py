"""A sequence's inputs: the run's data described for people, as a small JSON Schema.

`inputs` is a subset of JSON Schema draft 2020-12 (an object with `properties` and
`required`; per property `type`, `title`, `description`, `enum`, `default`, `examples`,
`pattern`, `minimum`/`maximum`, `minLength`/`maxLength`, `format`, `contentMediaType`). The
web page builds its form from it, the gateway checks a trigger's data against it, and a run
whose data does not fit finishes `Invalid` (`slipway.engine.inputs`).

A property with `contentMediaType` (e.g. `image/*`) is a file: the page offers an upload and
the run's data gets `{url, token, sha256, contentType, size}` of the stored file.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from slipway.api.common import SlipwayModel

MAX_INPUTS = 32
#: Names of inputs: keys of the run's data, as JSON and CloudEvents clients write them.
INPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$"
#: `contentMediaType`: `type/subtype`, where the subtype (or both) may be `*`.
MEDIA_TYPE_PATTERN = r"^([a-z]+|[*])/([a-z0-9.+-]+|[*])$"


class InputType(StrEnum):
    """The JSON type of an input's value."""

    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"


Text = Annotated[str, Field(max_length=2000)]


class Input(SlipwayModel):
    """One value of the run's data, as the form asks for it."""

    type: InputType = InputType.STRING
    """`string`, `number`, `integer` or `boolean`. A file (`contentMediaType` set) is a
    `string`."""

    title: Annotated[str, Field(max_length=200)] | None = None
    """The label a person sees, e.g. `Phone number`. Unset: the input's name."""

    description: Text | None = None
    """Help text under the field, in plain words."""

    enum: Annotated[list[Any], Field(max_length=100)] | None = None
    """The only values allowed: the page shows a choice."""

    default: Any = None
    """The value the form starts with."""

    examples: Annotated[list[Any], Field(max_length=10)] | None = None
    """Example values; the first is the field's placeholder."""

    pattern: Annotated[str, Field(max_length=1000)] | None = None
    """A regular expression a string must match (anywhere, as in JSON Schema: anchor it with
    `^…$`)."""

    minimum: float | None = None
    """The smallest number allowed."""

    maximum: float | None = None
    """The largest number allowed."""

    min_length: Annotated[int, Field(ge=0)] | None = None
    """The fewest characters a string may have."""

    max_length: Annotated[int, Field(ge=0)] | None = None
    """The most characters a string may have."""

    format: Annotated[str, Field(max_length=64)] | None = None
    """A JSON Schema format checked by the gateway (`email`, `date`, `uri`, …)."""

    content_media_type: Annotated[str, Field(max_length=100, pattern=MEDIA_TYPE_PATTERN)] | None = (
        None
    )
    """Makes the input a file of this media type (`image/*`, `image/jpeg`,
    `application/pdf`): the page offers an upload, the gateway stores it and puts a URL tools
    can fetch (with a token valid for that run only) into the run's data."""

    @model_validator(mode="after")
    def _consistent(self) -> Input:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as error:
                raise ValueError(
                    f"pattern {self.pattern!r} is not a regular expression: {error}"
                ) from error
        if self.content_media_type is not None and self.type != InputType.STRING:
            raise ValueError("a file input (contentMediaType) has type string")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is larger than maximum")
        return self

    @property
    def is_file(self) -> bool:
        return self.content_media_type is not None


class Inputs(SlipwayModel):
    """The run's data as a JSON Schema object: what the form asks for."""

    type: Literal["object"] = "object"
    """Always `object`."""

    properties: dict[str, Input] = Field(default_factory=dict, max_length=MAX_INPUTS)
    """The inputs by name (the key of the run's data). The form shows the required ones first,
    in the order of `required` (the API server keeps no order of map keys), then the others
    by name."""

    required: Annotated[list[str], Field(max_length=MAX_INPUTS)] = Field(default_factory=list)
    """The names of the inputs a run cannot do without."""

    @model_validator(mode="after")
    def _names(self) -> Inputs:
        bad = [n for n in self.properties if not re.fullmatch(INPUT_NAME_PATTERN, n)]
        if bad:
            raise ValueError(
                f"input names are letters, digits, '_' and '-', starting with a letter: {bad}"
            )
        unknown = [n for n in self.required if n not in self.properties]
        if unknown:
            raise ValueError(f"required names inputs that are not in properties: {unknown}")
        return self

    def order(self) -> list[str]:
        """The names in the order the form shows them."""
        return [*self.required, *sorted(n for n in self.properties if n not in self.required)]

    def files(self) -> dict[str, Input]:
        """The file inputs, by name."""
        return {name: spec for name, spec in self.properties.items() if spec.is_file}
