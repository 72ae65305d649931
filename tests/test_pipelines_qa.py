"""Question answering against transformers 4.57's pipeline (transformers 5 removed it), as recorded goldens.

The goldens (tests/data/pipelines_qa_golden.json: SQuAD dev ids + outputs, no SQuAD text) were made by
running this file as a script under transformers 4.57.1 (exactly: tokenization_parity_data.GOLDEN_TRANSFORMERS):

    pip install --target /tmp/hf457 --no-deps transformers==4.57.1 huggingface_hub==0.36.0 tokenizers==0.22.1 requests
    PYTHONPATH=/tmp/hf457 python tests/test_pipelines_qa.py

on a random checkpoint this file rebuilds (seeded; a weight fingerprint guards against drift).
Examples are SQuAD dev questions whose (question, context) both tokenizers split alike; with
``max_seq_len=64, doc_stride=16`` their contexts span several windows, which exercises the striding.
transformers 4's fast tokenizer counts the space before a word into its offsets, albertkit (like
transformers 5) does not: spans are compared on the end offset and the stripped answer text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_pipelines_common import assert_close, hf_checkpoint  # noqa: E402

GOLDEN = Path(__file__).parent / "data" / "pipelines_qa_golden.json"
PARAMS = [
    {},
    {"top_k": 3},
    {"max_seq_len": 64, "doc_stride": 16},
    {"max_seq_len": 64, "doc_stride": 16, "top_k": 4, "max_answer_len": 5},
    {"handle_impossible_answer": True, "top_k": 2},
]
# Recorded as "extra_cases": raw token offsets, on the first 10 SQuAD examples...
EXTRA_PARAMS = [
    {"align_to_words": False, "top_k": 3},
    {"max_seq_len": 64, "doc_stride": 16, "align_to_words": False, "top_k": 5, "max_answer_len": 3},
]
# ...and on texts written for the corner cases: one word at the start of the context and again
# after spaces (answers merged or not), a lone "▁" before ALBERT's user-defined symbols ( ) " - – . £ €
# (each a word of its own), runs of spaces, and top-k deep enough to reach zero-score [CLS] spans.
CRAFTED = [
    {"question": "Who saw whom?", "context": "The cat saw the dog. The dog saw the cat, and THE end came: the end."},
    {
        "question": "What happened to prices?",
        "context": 'Prices rose ( sharply ) – so said " experts " in 1999 – and then fell - again.  Costs:  £ 5 or '
        "€ 7 in  total. Rose  (  sharply  ) .",
    },
]
CRAFTED_PARAMS = [
    {"top_k": 10, "max_answer_len": 1},
    {"top_k": 10, "max_answer_len": 3},
    {"top_k": 8, "max_answer_len": 2, "align_to_words": False},
    {"top_k": 40, "handle_impossible_answer": True},
    {"max_seq_len": 24, "doc_stride": 8, "top_k": 6},
]


def _fingerprint(folder: Path) -> float:
    from safetensors.numpy import load_file

    return float(sum(abs(v).sum() for v in load_file(str(folder / "model.safetensors")).values()))


def _squad(shared_data: Path) -> dict[str, dict[str, str]]:
    data = json.loads((shared_data / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))["data"]
    return {
        qa["id"]: {"question": qa["question"], "context": p["context"]}
        for a in data
        for p in a["paragraphs"]
        for qa in p["qas"]
    }


def _record(out: Path, n: int = 40) -> None:  # pragma: no cover - run by hand under transformers 4.57
    import random
    import tempfile

    import transformers

    from albertkit import AlbertTokenizer

    from tokenization_parity_data import GOLDEN_TRANSFORMERS

    assert transformers.__version__ == GOLDEN_TRANSFORMERS, f"record under transformers=={GOLDEN_TRANSFORMERS}, not {transformers.__version__}"
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    folder = hf_checkpoint(Path(tempfile.mkdtemp()) / "qa", shared / "albert-base-v2" / "spiece.model", "ForQuestionAnswering", seed=5)
    ours = AlbertTokenizer.from_pretrained(folder)
    ref = transformers.AlbertTokenizerFast(vocab_file=str(folder / "spiece.model"))
    squad = _squad(shared)
    ids = sorted(squad)
    random.Random(0).shuffle(ids)
    chosen = [i for i in ids if ours(squad[i]["question"], squad[i]["context"])["input_ids"]
              == ref(squad[i]["question"], squad[i]["context"])["input_ids"]][:n]
    assert all(ours(c["question"], c["context"])["input_ids"] == ref(c["question"], c["context"])["input_ids"] for c in CRAFTED)
    qa = transformers.pipeline("question-answering", model=str(folder), tokenizer=ref, device="cpu")
    cases = [{"id": i, "params": p, "result": qa(**squad[i], **p)} for i in chosen for p in PARAMS]
    extra = [{"id": i, "params": p, "result": qa(**squad[i], **p)} for i in chosen[:10] for p in EXTRA_PARAMS]
    extra += [{**c, "params": p, "result": qa(**c, **p)} for c in CRAFTED for p in CRAFTED_PARAMS]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"transformers": transformers.__version__, "fingerprint": _fingerprint(folder),
                               "cases": cases, "extra_cases": extra}, indent=1))


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def qa_pipe(tmp_path_factory, spiece_path, golden):
    from albertkit import pipeline

    folder = hf_checkpoint(tmp_path_factory.mktemp("qa"), spiece_path, "ForQuestionAnswering", seed=5)
    assert_close(_fingerprint(folder), golden["fingerprint"], tol=1e-2, what="checkpoint fingerprint (RNG drift?)")
    return pipeline("question-answering", model=folder, batch_size=8)


def _check(got: dict, want: dict, context: str, what: str) -> None:
    assert got["end"] == want["end"], what
    assert got["answer"].strip() == want["answer"].strip(), what
    # transformers 4 starts a span at the space before the word; albertkit at the word.
    assert context[want["start"] : got["start"]].strip() == "", what
    assert_close(got["score"], want["score"], what=what)


def _compare(qa_pipe, cases, squad) -> None:
    # One batched run per parameter set (batching itself is checked against one-by-one below): few
    # forward calls keep this fast on a busy machine.
    groups: dict[str, list[dict]] = {}
    for case in cases:
        groups.setdefault(json.dumps(case["params"], sort_keys=True), []).append(case)
    for key, group in groups.items():
        items = [squad[c["id"]] if "id" in c else {"question": c["question"], "context": c["context"]} for c in group]
        results = qa_pipe.run_many(items, **json.loads(key))
        for case, item, got in zip(group, items, results):
            want = case["result"]
            got_l, want_l = (got, want) if isinstance(want, list) else ([got], [want])
            what = f"{case.get('id', item['context'][:30])} {case['params']}"
            assert len(got_l) == len(want_l), what
            for g, w in zip(got_l, want_l):
                _check(g, w, item["context"], what)


def test_question_answering_matches_transformers_457(qa_pipe, golden, shared_data):
    """All 200 recorded SQuAD cases: same spans (up to the leading space), texts and scores."""
    squad = _squad(shared_data)
    _compare(qa_pipe, golden["cases"], squad)
    windows = sum(
        len(qa_pipe.preprocess((squad[c["id"]]["question"], squad[c["id"]]["context"]), 0, doc_stride=16, max_seq_len=64))
        for c in golden["cases"]
        if c["params"].get("max_seq_len") == 64
    )
    assert windows > 2 * sum(1 for c in golden["cases"] if c["params"].get("max_seq_len") == 64)  # really split


def test_question_answering_matches_transformers_457_corner_cases(qa_pipe, golden, shared_data):
    """Raw token offsets (align_to_words=False), lone "▁" pieces, user-defined symbols, runs of spaces,
    answers merged across equal texts, zero-score [CLS] spans."""
    _compare(qa_pipe, golden["extra_cases"], _squad(shared_data))


def test_words_split_at_user_defined_symbols(qa_pipe):
    """transformers 4's words: "Illinois." is two words; "▁" before "(" is a word (the space) of its own."""
    from sentencepiece import sentencepiece_model_pb2 as pb  # outside reference for the piece types

    from albertkit.pipelines.question_answering import user_defined_ids

    proto = pb.ModelProto()
    proto.ParseFromString(qa_pipe.tokenizer.sp.serialized_model_proto())
    want = {i for i, p in enumerate(proto.pieces) if p.type == pb.ModelProto.SentencePiece.USER_DEFINED}
    assert user_defined_ids(qa_pipe.tokenizer) == want and len(want) == 8

    context = "Born in Illinois. Later ( 1999 ) moved."
    (f,) = qa_pipe.preprocess(("Where?", context), 0)
    spans, pieces = f.extra, qa_pipe.tokenizer.convert_ids_to_tokens(f.input_ids)
    at = {p: i for i, p in reversed(list(enumerate(pieces)))}
    dot, lone = at["."], at["▁"]
    assert qa_pipe._char_span(spans, at["▁illinois"], at["▁illinois"], True)[:2] == (8, 16)  # "Illinois"
    assert qa_pipe._char_span(spans, dot, dot, True)[:2] == (16, 17)  # "."
    assert qa_pipe._char_span(spans, lone, lone, True) == (23, 24, 23)  # " " (the space before "(")
    assert qa_pipe._char_span(spans, lone, at["▁1999"], True)[:2] == (24, 30)  # "( 1999"
    # "The" at the start is a different answer from " the" after a space, as in transformers 4.
    (f,) = qa_pipe.preprocess(("Who?", "The end, the end."), 0)
    the = [i for i, p in enumerate(qa_pipe.tokenizer.convert_ids_to_tokens(f.input_ids)) if p == "▁the"]
    assert [qa_pipe._char_span(f.extra, t, t, True) for t in the] == [(0, 3, 0), (9, 12, 8)]


def test_question_answering_batched_equals_one_by_one(qa_pipe, shared_data):
    from test_pipelines_common import squad_examples

    items = squad_examples(shared_data, 6, seed=3, min_context_chars=1500)  # long: several 384-token windows? no: 64
    batched = qa_pipe(items, max_seq_len=96, doc_stride=32, top_k=2)
    for item, got in zip(items, batched):
        one = qa_pipe(**item, max_seq_len=96, doc_stride=32, top_k=2)
        assert [(a["start"], a["end"], a["answer"]) for a in got] == [(a["start"], a["end"], a["answer"]) for a in one]
        for a, b in zip(got, one):
            assert_close(a["score"], b["score"])
            assert item["context"][a["start"] : a["end"]] == a["answer"]


def test_question_answering_bad_input(qa_pipe):
    from albertkit.pipelines import PipelineInputError

    with pytest.raises(PipelineInputError, match="context is empty"):
        qa_pipe(question="Who?", context="  ")
    with pytest.raises(PipelineInputError, match="question"):
        qa_pipe([{"question": "Who?", "context": "Me."}, {"context": "x"}])
    with pytest.raises(PipelineInputError, match="question takes"):
        qa_pipe(question="why " * 100, context="Because.", max_seq_len=64, doc_stride=16)


if __name__ == "__main__":  # pragma: no cover
    _record(GOLDEN)
    print(f"wrote {GOLDEN}")
