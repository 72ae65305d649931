"""return_tensors="tf" / "jax", and the README's "Get features in TensorFlow" snippet run as written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from keras_helpers import require_keras

require_keras()

import tensorflow as tf  # noqa: E402

from albertkit import AlbertTokenizer  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def tokenizer():
    return AlbertTokenizer.from_pretrained("albert-mini-en")


def test_return_tensors_tf_is_int32_and_equals_np(tokenizer):
    texts, pairs = ["Hello world, this is ALBERT.", "short"], ["a second segment", "b"]
    tf_enc = tokenizer(texts, pairs, padding=True, return_tensors="tf")
    np_enc = tokenizer(texts, pairs, padding=True, return_tensors="np")
    assert set(tf_enc) == set(np_enc) == {"input_ids", "token_type_ids", "attention_mask"}
    for key in np_enc:
        assert isinstance(tf_enc[key], tf.Tensor) and tf_enc[key].dtype == tf.int32
        np.testing.assert_array_equal(tf_enc[key].numpy(), np_enc[key])
    one = tokenizer("one text", return_tensors="tf")
    assert one["input_ids"].shape.rank == 2  # tensors keep the batch axis, as in transformers


def test_return_tensors_jax_where_installed_else_a_clear_error(tokenizer):
    if importlib.util.find_spec("jax") is None:
        with pytest.raises(ImportError, match="return_tensors='jax' needs jax: pip install jax"):
            tokenizer(["x"], return_tensors="jax")
    else:
        import jax.numpy as jnp

        enc = tokenizer(["x"], return_tensors="jax")
        assert isinstance(enc["input_ids"], jnp.ndarray) and enc["input_ids"].dtype == jnp.int32
    with pytest.raises(ValueError, match="return_tensors must be None, 'pt', 'np', 'tf' or 'jax'"):
        tokenizer(["x"], return_tensors="mx")


def test_readme_tensorflow_snippet_runs_as_written():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Get features in TensorFlow") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    output = scope["output"]
    assert output["last_hidden_state"].shape[0] == 1 and output["last_hidden_state"].shape[-1] == 256
    assert output["pooler_output"].shape == (1, 256)
