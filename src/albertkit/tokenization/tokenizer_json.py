"""``tokenizer.json`` (the ``tokenizers`` library's file) <-> SentencePiece ``spiece.model``.

transformers 5 saves ALBERT's tokenizer as ``tokenizer.json`` + ``tokenizer_config.json`` only.
Everything SentencePiece needs is in that file: the Unigram pieces and scores (``model.vocab``, in
id order), which pieces are control / user-defined (``added_tokens``, ``special`` true / false), the
unknown id, and the normaliser's ``Precompiled`` charsmap (SentencePiece's own ``nmt_nfkc`` table,
base64). :func:`spm_model_from_tokenizer_json` rebuilds the ``ModelProto`` from them, so albertkit
tokenises such a folder with SentencePiece itself, exactly as from the original ``spiece.model``.

    >>> proto = spm_model_from_tokenizer_json("folder/tokenizer.json")  # doctest: +SKIP
    >>> AlbertTokenizer(model_proto=proto)  # doctest: +SKIP

The other direction, :func:`tokenizer_json_from_spm_model`, writes the file transformers' own
``AlbertConverter`` makes from ``spiece.model`` (the layout of the hub's albert-base-v2), which
transformers 5 loads as its ALBERT tokenizer.

Two details of transformers' converter are undone / reproduced on purpose:

* it subtracts 100 from the score of every piece that ends in a digit and a comma (``"▁2010,"``),
  its way of emulating the slow tokenizer's digit-comma rule; real Unigram log-probabilities are
  far above -100, so such a score is shifted back when reading;
* ``[MASK]`` is an added token with ``lstrip`` (it absorbs the space before it), as in the slow
  tokenizer.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from albertkit.tokenization.encoder import is_digit_comma

__all__ = ["TokenizerJsonError", "spm_model_from_tokenizer_json", "tokenizer_json_from_spm_model", "tokenizer_options_from_tokenizer_json"]

# transformers' AlbertConverter: score - 100 for pieces ending in <digit>, (see module docstring)
DIGIT_COMMA_SHIFT = 100.0
# no Unigram log-probability of a real vocabulary comes near this; a lower score carries the shift
_SHIFTED_BELOW = -60.0


class TokenizerJsonError(ValueError):
    """A tokenizer.json that cannot be turned into a SentencePiece model; the message names the field."""


def sentencepiece_pb2() -> Any:
    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as exc:  # the module ships with sentencepiece, but needs protobuf
        raise ImportError(
            f"reading or writing tokenizer.json needs the protobuf package ({exc}); install it with: pip install protobuf"
        ) from None
    return sentencepiece_model_pb2


def _walk(node: Any, kind: str) -> list[dict[str, Any]]:
    """Every component of type ``kind`` in a (possibly nested ``Sequence``) normalizer / pre-tokenizer."""
    if not isinstance(node, dict):
        return []
    if node.get("type") == kind:
        return [node]
    out = []
    for key in ("normalizers", "pretokenizers"):
        for child in node.get(key) or []:
            out.extend(_walk(child, kind))
    return out


def spm_model_from_tokenizer_json(path: str | os.PathLike) -> bytes:
    """Rebuild ALBERT's SentencePiece model (serialized ``ModelProto``) from a ``tokenizer.json``.

    Raises :class:`TokenizerJsonError` naming the file and field when the file is not a Unigram
    (SentencePiece) tokenizer.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerJsonError(f"{path}: cannot read ({exc})") from None
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        raise TokenizerJsonError(f"{path}: no 'model' object")
    if model.get("type") != "Unigram":
        raise TokenizerJsonError(f"{path}: model.type is {model.get('type')!r}; ALBERT's tokenizer is a SentencePiece 'Unigram'")
    vocab = model.get("vocab")
    if not isinstance(vocab, list) or not vocab:
        raise TokenizerJsonError(f"{path}: model.vocab must be a non-empty list of [piece, score]")
    unk_id = model.get("unk_id")
    if not isinstance(unk_id, int) or not 0 <= unk_id < len(vocab):
        raise TokenizerJsonError(f"{path}: model.unk_id must be an id of model.vocab, got {unk_id!r}")
    if model.get("byte_fallback"):
        raise TokenizerJsonError(f"{path}: model.byte_fallback is set; ALBERT's SentencePiece models have no byte pieces")

    added: dict[int, bool] = {}  # id -> special (control) or not (user-defined)
    for n, tok in enumerate(data.get("added_tokens") or []):
        if not isinstance(tok, dict) or not isinstance(tok.get("id"), int) or not isinstance(tok.get("content"), str):
            raise TokenizerJsonError(f"{path}: added_tokens[{n}] must have an integer 'id' and a string 'content'")
        if not 0 <= tok["id"] < len(vocab):
            continue  # a token appended after the Unigram vocab: not part of the SentencePiece model
        if vocab[tok["id"]][0] != tok["content"]:
            raise TokenizerJsonError(f"{path}: added_tokens[{n}] {tok['content']!r} has id {tok['id']}, which is {vocab[tok['id']][0]!r} in model.vocab")
        added[tok["id"]] = bool(tok.get("special"))

    charsmaps = _walk(data.get("normalizer"), "Precompiled")
    charsmap = b""
    if charsmaps:
        try:
            charsmap = base64.b64decode(charsmaps[0].get("precompiled_charsmap") or "", validate=True)
        except (ValueError, TypeError) as exc:
            raise TokenizerJsonError(f"{path}: normalizer Precompiled.precompiled_charsmap is not base64 ({exc})") from None
    metaspace = _walk(data.get("pre_tokenizer"), "Metaspace")
    if not metaspace:
        raise TokenizerJsonError(f"{path}: pre_tokenizer has no Metaspace step; not a SentencePiece tokenizer")
    ms = metaspace[0]
    add_dummy_prefix = ms.get("prepend_scheme", "always") != "never" and ms.get("add_prefix_space", True) is not False

    pb = sentencepiece_pb2()
    Piece = pb.ModelProto.SentencePiece
    proto = pb.ModelProto()
    for i, entry in enumerate(vocab):
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], (int, float))):
            raise TokenizerJsonError(f"{path}: model.vocab[{i}] must be [piece, score], got {entry!r}")
        piece, score = entry[0], float(entry[1])
        if is_digit_comma(piece) and score < _SHIFTED_BELOW:
            score += DIGIT_COMMA_SHIFT
        if i == unk_id:
            kind = Piece.UNKNOWN
        elif i in added:
            kind = Piece.CONTROL if added[i] else Piece.USER_DEFINED
        else:
            kind = Piece.NORMAL
        proto.pieces.add(piece=piece, score=score, type=kind)

    spec = proto.trainer_spec
    spec.model_type = pb.TrainerSpec.UNIGRAM
    spec.vocab_size = len(vocab)
    spec.unk_id, spec.bos_id, spec.eos_id = unk_id, -1, -1
    spec.unk_piece = vocab[unk_id][0]
    pad = [i for i, p in enumerate(vocab) if p[0] == "<pad>" and added.get(i)]
    spec.pad_id = pad[0] if pad else -1
    spec.hard_vocab_limit = False
    norm = proto.normalizer_spec
    norm.name = "nmt_nfkc" if charsmap else "identity"  # the charsmap, not the name, is what runs
    norm.precompiled_charsmap = charsmap
    norm.add_dummy_prefix = add_dummy_prefix
    norm.remove_extra_whitespaces = True
    norm.escape_whitespaces = True
    return proto.SerializeToString()


def tokenizer_options_from_tokenizer_json(path: str | os.PathLike) -> dict[str, bool]:
    """``do_lower_case`` / ``keep_accents`` as the file's normaliser applies them (``Lowercase``,
    ``StripAccents`` steps), for folders whose tokenizer_config.json does not say."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenizerJsonError(f"{path}: cannot read ({exc})") from None
    normalizer = data.get("normalizer") if isinstance(data, dict) else None
    return {"do_lower_case": bool(_walk(normalizer, "Lowercase")), "keep_accents": not _walk(normalizer, "StripAccents")}


def tokenizer_json_from_spm_model(
    model_proto: bytes,
    *,
    do_lower_case: bool = True,
    keep_accents: bool = False,
    cls_token: str = "[CLS]",
    sep_token: str = "[SEP]",
    mask_token: str = "[MASK]",
) -> dict[str, Any]:
    """The ``tokenizer.json`` (as a dict) that transformers' ``AlbertConverter`` makes from this model.

        >>> data = tokenizer_json_from_spm_model(tok.sp.serialized_model_proto())  # doctest: +SKIP
    """
    pb = sentencepiece_pb2()
    Piece = pb.ModelProto.SentencePiece
    proto = pb.ModelProto()
    proto.ParseFromString(model_proto)
    vocab, added, unk_id = [], [], None
    ids = {}
    for i, p in enumerate(proto.pieces):
        score = float(p.score) - (DIGIT_COMMA_SHIFT if is_digit_comma(p.piece) else 0.0)
        vocab.append([p.piece, score])
        ids[p.piece] = i
        if p.type == Piece.UNKNOWN:
            unk_id = i
        if p.type in (Piece.CONTROL, Piece.UNKNOWN):
            added.append({"id": i, "content": p.piece, "single_word": False, "lstrip": p.piece == mask_token,
                          "rstrip": False, "normalized": False, "special": True})
    if unk_id is None:
        raise TokenizerJsonError("the SentencePiece model has no unknown piece")
    for name, token in (("cls_token", cls_token), ("sep_token", sep_token)):
        if token not in ids:
            raise TokenizerJsonError(f"the SentencePiece model has no {name} {token!r}")

    normalizers: list[dict[str, Any]] = [
        {"type": "Replace", "pattern": {"String": "``"}, "content": '"'},
        {"type": "Replace", "pattern": {"String": "''"}, "content": '"'},
    ]
    if not keep_accents:
        normalizers += [{"type": "NFKD"}, {"type": "StripAccents"}]
    if do_lower_case:
        normalizers.append({"type": "Lowercase"})
    charsmap = proto.normalizer_spec.precompiled_charsmap
    if charsmap:
        normalizers.append({"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode("ascii")})
    normalizers.append({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})
    scheme = "always" if proto.normalizer_spec.add_dummy_prefix else "never"
    metaspace = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": True}

    def special(name: str) -> dict[str, Any]:
        return {"SpecialToken": {"id": name, "type_id": 0}}

    def seq(name: str, type_id: int) -> dict[str, Any]:
        return {"Sequence": {"id": name, "type_id": type_id}}

    sep1 = {"SpecialToken": {"id": sep_token, "type_id": 1}}
    post = {
        "type": "TemplateProcessing",
        "single": [special(cls_token), seq("A", 0), special(sep_token)],
        "pair": [special(cls_token), seq("A", 0), special(sep_token), seq("B", 1), sep1],
        "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in (cls_token, sep_token)},
    }
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": metaspace,
        "post_processor": post,
        "decoder": dict(metaspace),
        "model": {"type": "Unigram", "unk_id": unk_id, "vocab": vocab, "byte_fallback": False},
    }
