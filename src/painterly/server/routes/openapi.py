"""OpenAPI descriptions of multipart form routes (FastAPI cannot infer them: the routes parse their
forms themselves, to check sizes and fields before reading files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: The ``model`` field every stylizing route takes.
MODEL_FIELD: dict[str, Any] = {"type": "string", "description": "a name from GET /api/models"}


def multipart_body(required: Sequence[str], properties: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose request body is a multipart form with these fields."""
    schema = {"type": "object", "required": list(required), "properties": dict(properties)}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
