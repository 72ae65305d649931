"""Baseline for bench/load_test_serve.py: FastAPI + uvicorn running the transformers pipeline per request.

What one writes without a batcher: a sync route per task (FastAPI runs each in its thread pool),
each request one call of ``transformers.pipeline`` on its own inputs, no batching across requests.
Same request/response shapes as albertkit's ``/embed`` (mean pooling, L2-normalized) and
``/fill-mask`` for the routes the load test uses, plus ``/health``.

    $ python bench/serve_baseline.py src/albertkit/models/albert-mini-en --port 8081 [--dtype bf16]
"""

from __future__ import annotations

import argparse
import logging

import numpy as np


def build_app(model: str, dtype: str = "fp32"):
    import torch
    import transformers
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    # bf16 as transformers documents it for CPU inference: the model loaded in torch.bfloat16.
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    fill = transformers.pipeline("fill-mask", model=model, device="cpu", dtype=torch_dtype)
    features = transformers.pipeline("feature-extraction", model=model, device="cpu", dtype=torch_dtype)
    app = FastAPI()

    def texts(body: dict) -> tuple[bool, list[str]]:
        inputs = body["inputs"]
        return (True, [inputs]) if isinstance(inputs, str) else (False, list(inputs))

    @app.get("/health")
    def health() -> JSONResponse:
        return JSONResponse({})

    @app.post("/embed")
    def embed(body: dict) -> JSONResponse:
        _, items = texts(body)
        out = []
        for text in items:
            hidden = np.asarray(features(text)[0], dtype=np.float32)  # [T, H], all real tokens
            vector = hidden.mean(axis=0)
            if body.get("normalize", True):
                vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
            out.append(vector.tolist())
        return JSONResponse(out)

    @app.post("/fill-mask")
    def fill_mask(body: dict) -> JSONResponse:
        single, items = texts(body)
        top_k = int(body.get("top_k", 5))
        results = [fill(text, top_k=top_k) for text in items]
        return JSONResponse(results[0] if single else results)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="the model's precision (default fp32)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(build_app(args.model, args.dtype), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
