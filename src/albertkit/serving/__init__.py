"""``albertkit serve``: an HTTP inference server with text-embeddings-inference's routes.

FastAPI + uvicorn (``pip install 'albertkit[serve]'``), imported only when a server is built.
One model copy, one thread that owns it, dynamic batching across requests by padded tokens.

    >>> from albertkit.serving import ServedModel, ServerSettings, create_app   # doctest: +SKIP
    >>> app = create_app(lambda: ServedModel.load("albert-base-v2"), ServerSettings(api_key="s3cret"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from albertkit.serving.options import FAST_CHOICES, SERVE_INSTALL_HINT

__all__ = ["ServedModel", "ServerSettings", "create_app", "SERVE_INSTALL_HINT", "FAST_CHOICES"]


def __getattr__(name: str) -> Any:
    if name == "ServedModel":
        from albertkit.serving.model import ServedModel

        return ServedModel
    if name in ("ServerSettings", "create_app"):
        try:
            from albertkit.serving import app
        except ModuleNotFoundError as exc:
            if exc.name in ("fastapi", "starlette", "prometheus_client", "uvicorn"):
                raise ModuleNotFoundError(f"{SERVE_INSTALL_HINT} ({exc.name} is missing)", name=exc.name) from None
            raise
        return getattr(app, name)
    raise AttributeError(f"module 'albertkit.serving' has no attribute {name!r}")
