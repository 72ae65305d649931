"""Fine-tuning smoke test: model.fit on real SST-2 rows lowers the loss, and the weights saved to an
HF folder give the same logits in albertkit (PyTorch) and transformers."""

from __future__ import annotations

import numpy as np
from keras_helpers import require_keras

require_keras()

import keras  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

import albertkit.modeling as ak_torch  # noqa: E402
from albertkit import AlbertTokenizer  # noqa: E402
from albertkit.finetuning.readers import read_glue  # noqa: E402
from albertkit.hub import shipped_model_path  # noqa: E402
from albertkit.keras import AlbertForSequenceClassification  # noqa: E402


def test_fit_on_sst2_rows_lowers_the_loss_and_saves_an_hf_folder(shared_data, tmp_path):
    keras.utils.set_random_seed(0)
    rows = read_glue("sst-2", shared_data / "glue" / "SST-2" / "train.tsv")[:16]
    labels = np.array([int(r.label) for r in rows], np.int32)
    assert 0 < labels.sum() < len(labels)  # both classes present
    tokenizer = AlbertTokenizer.from_pretrained("albert-mini-en")
    inputs = dict(tokenizer([r.text_a for r in rows], padding=True, truncation=True, max_length=32, return_tensors="tf"))

    model = AlbertForSequenceClassification.from_pretrained("albert-mini-en", num_labels=2)
    # jit_compile off: XLA compiling the step costs more than these 6 steps take
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    before = model.evaluate(inputs, labels, batch_size=8, verbose=0)
    model.fit(inputs, labels, batch_size=8, epochs=3, shuffle=False, verbose=0)
    after = model.evaluate(inputs, labels, batch_size=8, verbose=0)
    assert after < before - 0.02, (before, after)

    model.save_pretrained(tmp_path / "sst2")
    tokenizer.save_pretrained(tmp_path / "sst2")
    logits = np.asarray(model(inputs)["logits"])
    batch = {k: torch.from_numpy(np.asarray(v)).long() for k, v in inputs.items()}
    with torch.no_grad():
        mine = ak_torch.AlbertForSequenceClassification.from_pretrained(tmp_path / "sst2")(**batch).logits.numpy()
        theirs = transformers.AlbertForSequenceClassification.from_pretrained(tmp_path / "sst2").eval()(**batch).logits.numpy()
    np.testing.assert_allclose(mine, logits, atol=1e-5, rtol=0)
    np.testing.assert_allclose(theirs, logits, atol=1e-5, rtol=0)
    assert shipped_model_path("albert-mini-en") is not None
