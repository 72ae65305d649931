"""Errors a route answers with, and their JSON: TEI's ``{"error", "error_type"}``, OpenAI's on ``/v1/*``.

Statuses (documented in the README's serving section):

=====  ==============  =====================================================================
code   error_type      when
=====  ==============  =====================================================================
400    validation      empty input: ``inputs: []``, ``""``, ``texts: []``, ``ids: []``
401    unauthorized    ``--api-key`` set and the ``Authorization: Bearer KEY`` header is wrong
413    validation      body over ``--payload-limit``; more inputs than ``--max-client-batch-size``;
                       an input over the model's window without ``truncate`` / ``--auto-truncate``
422    validation      malformed JSON, invalid UTF-8, a wrong type or value, no ``[MASK]``
424    backend         a route the loaded model's heads cannot serve (TEI's status for it)
429    overloaded      more than ``--max-concurrent-requests`` requests in flight
500    backend         the model failed (a bug: please report it)
503    unhealthy       the model is still loading, or the server is shutting down
=====  ==============  =====================================================================
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ApiError", "error_body"]


class ApiError(Exception):
    """An error answered as JSON with ``status``; ``message`` is one line that names the field."""

    def __init__(self, status: int, message: str, error_type: str = "validation") -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(str(message).split())
        self.error_type = error_type


def error_body(path: str, status: int, message: str, error_type: str) -> bytes:
    """The error JSON for ``path``: OpenAI's nested shape under ``/v1/``, TEI's flat one elsewhere."""
    if path.startswith("/v1/"):
        body: Any = {"error": {"message": message, "type": error_type, "param": None, "code": status}}
    else:
        body = {"error": message, "error_type": error_type}
    return json.dumps(body, ensure_ascii=False).encode("utf-8")
