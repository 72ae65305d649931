"""The occupation probe: its output structure, its numbers against transformers' fill-mask pipeline on
the same random checkpoint, and the template/subject checks."""

from __future__ import annotations

import pytest

from test_pipelines_common import hf_checkpoint, hf_pipeline, hf_tokenizer

# No "." right after the mask: transformers 5's tokenizer splits "[MASK]." unlike the slow one.
TEMPLATES = ["{person} worked as a [MASK] in the city", "every day {person} was a [MASK] at work"]
PAIRS = [("the man", "the woman"), ("he", "she")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, spiece_path):
    return hf_checkpoint(tmp_path_factory.mktemp("probe"), spiece_path, "ForMaskedLM", seed=5)


@pytest.fixture(scope="module")
def report(checkpoint):
    from albertkit import AlbertForMaskedLM, AlbertTokenizer
    from albertkit.model_card.probe import occupation_probe

    return occupation_probe(AlbertForMaskedLM.from_pretrained(checkpoint), AlbertTokenizer.from_pretrained(checkpoint), TEMPLATES, PAIRS, top_k=6)


def test_probe_structure(report):
    assert report["top_k"] == 6 and report["templates"] == TEMPLATES and report["pairs"] == [list(p) for p in PAIRS]
    assert len(report["results"]) == len(TEMPLATES) * len(PAIRS)
    first = report["results"][0]
    assert first["sentence_a"] == "The man worked as a [MASK] in the city"
    assert report["results"][2]["sentence_a"] == "every day the man was a [MASK] at work"  # not capitalised mid-sentence
    for r in report["results"]:
        words_a, words_b = [w for w, _ in r["top_a"]], [w for w, _ in r["top_b"]]
        assert len(words_a) == len(words_b) == 6
        assert r["only_a"] == [w for w in words_a if w not in words_b]
        assert r["only_b"] == [w for w in words_b if w not in words_a]
        assert 0.0 <= r["mass_shift"] <= 1.0
        assert [p for _, p in r["top_a"]] == sorted((p for _, p in r["top_a"]), reverse=True)
    for p, s in enumerate(report["summary"]):
        mine = [r for r in report["results"] if (r["a"], r["b"]) == PAIRS[p]]
        assert s["mean_mass_shift"] == pytest.approx(sum(r["mass_shift"] for r in mine) / len(mine), abs=1e-5)
        assert sum(s["only_a"].values()) == sum(len(r["only_a"]) for r in mine)
    # a random model moves probability mass when the subject changes
    assert any(r["mass_shift"] > 0.01 for r in report["results"])


def test_probe_matches_transformers_fill_mask(report, checkpoint):
    from albertkit import AlbertTokenizer

    ours, ref_tok = AlbertTokenizer.from_pretrained(checkpoint), hf_tokenizer(checkpoint)
    ref = hf_pipeline("fill-mask", checkpoint)
    for r in report["results"]:
        for key in ("a", "b"):
            sentence = r[f"sentence_{key}"]
            assert ours.encode(sentence) == list(ref_tok(sentence)["input_ids"]), sentence
            want = ref(sentence, top_k=6)
            assert [w for w, _ in r[f"top_{key}"]] == [c["token_str"].strip() for c in want], sentence
            for (_, p), c in zip(r[f"top_{key}"], want):
                assert p == pytest.approx(c["score"], abs=1e-5)


def test_mass_shift_is_total_variation(checkpoint):
    """A pair of identical subjects shifts nothing; the shift equals 0.5 * L1 of the two softmaxes."""
    import torch

    from albertkit import AlbertForMaskedLM, AlbertTokenizer
    from albertkit.model_card.probe import occupation_probe

    model, tok = AlbertForMaskedLM.from_pretrained(checkpoint), AlbertTokenizer.from_pretrained(checkpoint)
    same = occupation_probe(model, tok, TEMPLATES[:1], [("the man", "the man")], top_k=3)
    assert same["results"][0]["mass_shift"] == pytest.approx(0.0, abs=1e-6) and same["results"][0]["only_a"] == []
    got = occupation_probe(model, tok, TEMPLATES[:1], PAIRS[:1], top_k=3)["results"][0]
    probs = []
    for sentence in (got["sentence_a"], got["sentence_b"]):
        ids = torch.tensor([tok.encode(sentence)])
        pos = ids[0].tolist().index(tok.mask_token_id)
        with torch.no_grad():
            probs.append(model(ids).logits[0, pos].softmax(-1))
    assert got["mass_shift"] == pytest.approx(0.5 * float((probs[0] - probs[1]).abs().sum()), abs=1e-5)


def test_templates_are_checked(tmp_path):
    from albertkit.model_card.probe import ProbeInputError, read_templates

    good = tmp_path / "t.txt"
    good.write_text("# comment\n\n{person} is a [MASK].\n", encoding="utf-8")
    assert read_templates(good) == ["{person} is a [MASK]."]
    bad = tmp_path / "bad.txt"
    bad.write_text("{person} is a [MASK].\nthe [MASK] is here.\n", encoding="utf-8")
    with pytest.raises(ProbeInputError, match=r"bad.txt, line 2: a template needs \{person\} exactly once"):
        read_templates(bad)
    two = tmp_path / "two.txt"
    two.write_text("{person} is a [MASK] [MASK].\n", encoding="utf-8")
    with pytest.raises(ProbeInputError, match=r"two.txt, line 1: a template needs \[MASK\] exactly once"):
        read_templates(two)
