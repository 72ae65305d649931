"""``tokenizer.json`` <-> ``spiece.model``: lives in :mod:`albertkit.tokenization.tokenizer_json`
(the tokenizer's own file format); importable here as before."""

from albertkit.tokenization.tokenizer_json import (  # noqa: F401
    DIGIT_COMMA_SHIFT,
    TokenizerJsonError,
    spm_model_from_tokenizer_json,
    tokenizer_json_from_spm_model,
    tokenizer_options_from_tokenizer_json,
)

__all__ = ["TokenizerJsonError", "spm_model_from_tokenizer_json", "tokenizer_json_from_spm_model", "tokenizer_options_from_tokenizer_json"]
