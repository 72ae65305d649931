"""Torch-free facts of ``albertkit serve`` that its modules and its command line share.

    >>> FAST_CHOICES[0]
    'auto'
"""

from __future__ import annotations

from albertkit.layout import FAST_MODES

__all__ = ["FAST_CHOICES", "SERVE_INSTALL_HINT"]

# --fast of `albertkit serve`: albertkit.fast's modes, "auto" first (here: bf16 where it runs natively, else fp32).
FAST_CHOICES = ("auto", *(mode for mode in FAST_MODES if mode != "auto"))

SERVE_INSTALL_HINT = "albertkit serve needs the optional extras: pip install 'albertkit[serve]' (FastAPI, uvicorn, prometheus_client)"
