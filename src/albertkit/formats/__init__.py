"""Loaders and writers for the outside formats ALBERT models come in.

One module per format; each turns its files into what the rest of albertkit already speaks
(an HF config dict + state dict, a SentencePiece model), so nothing else knows which one ran:

* ``tokenizer_json``: moved to ``albertkit.tokenization.tokenizer_json`` (the tokenizer's own
  file format); the old import path still works;
* ``sentence_transformers``: a sentence-transformers folder (``modules.json``, pooling, normalize)
  <-> the ``sentence-embedding`` pipeline's options;
* ``tf_bundle`` + ``google``: Google's original TF1 checkpoints (tensor bundle, ``albert_config.json``)
  -> an HF ``AlbertForPreTraining`` folder, without TensorFlow.
"""
