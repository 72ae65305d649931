"""Readers on the real GLUE / SQuAD / RACE files, and the errors bad input must give."""

from __future__ import annotations

import json
import logging

import pytest

from albertkit.finetuning.readers import (
    DataFormatError,
    infer_label_list,
    parse_article_range,
    read_conll,
    read_glue,
    read_race,
    read_squad,
    read_table,
    squad_article_count,
)

# (task, folder, split) -> (rows, most common label count) from PROVENANCE.md / the GLUE paper.
GLUE_COUNTS = [
    ("cola", "CoLA", "dev", 1043, {"1": 721, "0": 322}),
    ("sst2", "SST-2", "dev", 872, {"1": 444, "0": 428}),
    ("mrpc", "MRPC", "dev", 408, {"1": 279, "0": 129}),
    ("qnli", "QNLI", "dev", 5463, {"entailment": 2702, "not_entailment": 2761}),
    ("rte", "RTE", "dev", 277, {"entailment": 146, "not_entailment": 131}),
    ("wnli", "WNLI", "dev", 71, {"1": 31, "0": 40}),
    ("rte", "RTE", "train", 2490, None),
    ("mrpc", "MRPC", "train", 3667, None),
    ("cola", "CoLA", "train", 8551, None),
]


@pytest.mark.parametrize("task,folder,split,rows,counts", GLUE_COUNTS)
def test_glue_dev_files_read_completely(shared_data, task, folder, split, rows, counts):
    examples = read_glue(task, shared_data / "glue" / folder / f"{split}.tsv")
    assert len(examples) == rows
    if counts:
        seen: dict = {}
        for ex in examples:
            seen[ex.label] = seen.get(ex.label, 0) + 1
        assert seen == counts


def test_mrpc_bom_and_literal_quotes(shared_data):
    examples = read_glue("mrpc", shared_data / "glue/MRPC/dev.tsv")
    first = examples[0]
    # The BOM is not part of the first header name (else 'Quality' would not be found) and the
    # leading '"' of the pair is kept as a character, not taken as CSV quoting.
    assert first.label == "1"
    assert first.text_b.startswith('" The foodservice pie business')
    assert first.line == 2
    # every one of the 85 lines with a quote character stayed one example
    assert sum('"' in (ex.text_a + ex.text_b) for ex in examples) == 85


def test_cola_without_header_and_stsb_regression(shared_data):
    cola = read_glue("cola", shared_data / "glue/CoLA/dev.tsv")
    assert cola[0].text_a == "The sailors rode the breeze clear of the rocks." and cola[0].line == 1
    stsb = read_glue("STS-B", shared_data / "glue/STS-B/dev.tsv")
    assert len(stsb) == 1500 and stsb[0].label == 5.0 and stsb[0].text_b == "A man wearing a hard hat is dancing."
    assert sum(ex.label for ex in stsb) / 1500 == pytest.approx(2.364, abs=1e-3)


def _write_test_file(src, dst, keep):
    # Build a GLUE-style unlabeled test file (index + text columns) from real dev rows.
    rows = [line.rstrip("\n").split("\t") for line in src.read_text(encoding="utf-8-sig").splitlines()]
    dst.write_text("\n".join("\t".join(r[i] for i in keep) for r in rows) + "\n", encoding="utf-8")


def test_unlabeled_test_files(shared_data, tmp_path):
    _write_test_file(shared_data / "glue/RTE/dev.tsv", tmp_path / "test.tsv", [0, 1, 2])
    test = read_glue("rte", tmp_path / "test.tsv")
    assert len(test) == 277 and all(ex.label is None for ex in test) and test[5].guid == "test-5"
    # CoLA's test file is the only CoLA file with a header: "index\tsentence".
    lines = (shared_data / "glue/CoLA/dev.tsv").read_text().splitlines()[:3]
    (tmp_path / "cola_test.tsv").write_text("index\tsentence\n" + "".join(f"{i}\t{l.split(chr(9))[3]}\n" for i, l in enumerate(lines)))
    cola = read_glue("cola", tmp_path / "cola_test.tsv")
    assert [ex.label for ex in cola] == [None] * 3 and cola[2].text_a == lines[2].split("\t")[3]


def test_glue_missing_column_names_file_and_column(shared_data, tmp_path):
    _write_test_file(shared_data / "glue/RTE/dev.tsv", tmp_path / "dev.tsv", [0, 1, 3])  # no sentence2
    with pytest.raises(DataFormatError, match=r"dev\.tsv:1: missing text pair column 'sentence2'"):
        read_glue("rte", tmp_path / "dev.tsv")


def test_glue_label_outside_set_names_line(shared_data, tmp_path):
    lines = (shared_data / "glue/RTE/dev.tsv").read_text().splitlines()
    lines[10] = lines[10].rsplit("\t", 1)[0] + "\tmaybe"
    (tmp_path / "dev.tsv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"dev\.tsv:11: label 'maybe' is not one of entailment, not_entailment"):
        read_glue("rte", tmp_path / "dev.tsv")
    # skip_malformed counts and reports instead
    assert len(read_glue("rte", tmp_path / "dev.tsv", skip_malformed=True)) == 276


def test_glue_short_row_and_bad_score(shared_data, tmp_path):
    lines = (shared_data / "glue/STS-B/dev.tsv").read_text().splitlines()
    bad = lines[:4] + [lines[4].rsplit("\t", 1)[0] + "\tfive"]
    (tmp_path / "a.tsv").write_text("\n".join(bad) + "\n")
    with pytest.raises(DataFormatError, match=r"a\.tsv:5: score 'five' is not a number"):
        read_glue("stsb", tmp_path / "a.tsv")
    (tmp_path / "b.tsv").write_text("\n".join(lines[:3] + ["0\tmain-captions\tMSRvid"]) + "\n")
    with pytest.raises(DataFormatError, match=r"b\.tsv:4: 3 tab-separated fields"):
        read_glue("stsb", tmp_path / "b.tsv")
    with pytest.raises(ValueError, match="unknown GLUE task"):
        read_glue("glue-x", tmp_path / "b.tsv")


def test_read_table_csv_jsonl_and_errors(tmp_path):
    (tmp_path / "a.csv").write_text('text,other,label\n"Hello, ""world""",x,pos\nplain,y,neg\n')
    ex = read_table(tmp_path / "a.csv", label_list=["pos", "neg"])
    assert [(e.text_a, e.label, e.line) for e in ex] == [('Hello, "world"', "pos", 2), ("plain", "neg", 3)]
    assert infer_label_list(ex) == ["neg", "pos"]
    (tmp_path / "b.jsonl").write_text('{"q": "a", "p": "b", "y": 0.5}\n\n{"q": "c", "p": "d", "y": 2}\n')
    ex = read_table(tmp_path / "b.jsonl", text_column="q", text_pair_column="p", label_column="y", regression=True)
    assert [(e.text_a, e.text_b, e.label, e.line) for e in ex] == [("a", "b", 0.5, 1), ("c", "d", 2.0, 3)]
    with pytest.raises(DataFormatError, match=r"b\.jsonl:1: missing column 'label'"):
        read_table(tmp_path / "b.jsonl", text_column="q")
    with pytest.raises(DataFormatError, match=r"a\.csv:3: label 'neg' is not one of pos"):
        read_table(tmp_path / "a.csv", label_list=["pos"])
    (tmp_path / "c.jsonl").write_text('{"text": "a", "label": 1}\n{"text": "b", label: 1}\n')
    with pytest.raises(DataFormatError, match=r"c\.jsonl:2: invalid JSON"):
        read_table(tmp_path / "c.jsonl")
    (tmp_path / "d.tsv").write_text("text\tlabel\nx\t1\ny\n")
    with pytest.raises(DataFormatError, match=r"d\.tsv:3: 1 fields, header has 2"):
        read_table(tmp_path / "d.tsv")


def test_squad_v1_and_v2(shared_data):
    v1 = read_squad(shared_data / "squad/dev-v1.1.json")
    assert len(v1) == 10570 and sum(len(e.answers) for e in v1) == 34726
    assert v1[0].qid == "56be4db0acb8001400a502ec" and v1[0].title == "Super_Bowl_50"
    v2 = read_squad(shared_data / "squad/dev-v2.0.cs224n-subset.json")
    assert len(v2) == 6078 and sum(e.is_impossible for e in v2) == 3168
    assert all(not e.answers for e in v2 if e.is_impossible)


def test_parse_article_range():
    assert parse_article_range("0:24") == slice(0, 24) and parse_article_range(" 24 : ") == slice(24, None)
    assert parse_article_range(":8") == slice(None, 8) and parse_article_range(None) is None
    assert parse_article_range(range(3, 5)) == slice(3, 5)
    for bad in ("24", "a:b", "-1:4", "5:5", "8:2", "0:4:2"):
        with pytest.raises(ValueError, match="article range"):
            parse_article_range(bad)


def test_squad_split_by_article_halves(shared_data):
    path = shared_data / "squad/dev-v1.1.json"
    raw = json.loads(path.read_text())["data"]
    assert squad_article_count(path) == len(raw) == 48

    def ids(articles):
        return [qa["id"] for a in articles for p in a["paragraphs"] for qa in p["qas"]]

    first, second = read_squad(path, articles="0:24"), read_squad(path, articles="24:48")
    # The halves are exactly the raw file's articles 0..23 and 24..47, questions in file order.
    assert [e.qid for e in first] == ids(raw[:24]) and [e.qid for e in second] == ids(raw[24:])
    assert (len(first), len(second)) == (5696, 4874) and not {e.qid for e in first} & {e.qid for e in second}
    assert first[0].title == "Super_Bowl_50" and second[0].title == "American_Broadcasting_Company"
    assert [e.qid for e in read_squad(path, articles="24:")] == [e.qid for e in second]
    v2 = shared_data / "squad/dev-v2.0.cs224n-subset.json"
    assert len(read_squad(v2, articles="0:8")) + len(read_squad(v2, articles="8:16")) == 6078
    with pytest.raises(DataFormatError, match=r"dev-v1\.1\.json: article range 40:50 is outside the file's 48 articles"):
        read_squad(path, articles="40:50")


def _squad_slice(shared_data, tmp_path, shift_first_answer: bool):
    data = json.loads((shared_data / "squad/dev-v1.1.json").read_text())
    para = data["data"][0]["paragraphs"][0]
    data["data"] = [{"title": "t", "paragraphs": [para]}]
    if shift_first_answer:
        para["qas"][1]["answers"][0]["answer_start"] += 3
    path = tmp_path / "slice.json"
    path.write_text(json.dumps(data))
    return path, para


def test_squad_answer_not_in_context_skip_or_error(shared_data, tmp_path, caplog):
    path, para = _squad_slice(shared_data, tmp_path, shift_first_answer=True)
    bad_id = para["qas"][1]["id"]
    with caplog.at_level(logging.WARNING):
        examples = read_squad(path)
    assert len(examples) == len(para["qas"]) - 1 and bad_id not in {e.qid for e in examples}
    assert f"skipped 1 questions" in caplog.text and bad_id in caplog.text
    with pytest.raises(DataFormatError, match=rf"slice\.json \(question id {bad_id}\): answer .* is not at answer_start"):
        read_squad(path, on_bad_answer="error")
    assert len(read_squad(path, on_bad_answer="keep")) == len(para["qas"])


def test_race_sample(shared_data, tmp_path):
    allq = read_race(shared_data / "race/RACE")
    assert len(allq) == 61
    dev = read_race(shared_data / "race/RACE/dev")
    assert {e.level for e in dev} == {"middle", "high"}
    one = [e for e in dev if e.qid.startswith("high73.txt")]
    assert len(one) == 1 and one[0].label == 2 and len(one[0].options) == 4
    record = json.loads((shared_data / "race/RACE/dev/high/73.txt").read_text())
    record["answers"] = ["E"]
    (tmp_path / "high").mkdir()
    (tmp_path / "high" / "1.txt").write_text(json.dumps(record))
    with pytest.raises(DataFormatError, match=r"1\.txt \(question 0\): answer 'E' is not one of A, B, C, D"):
        read_race(tmp_path)


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

"""


def test_conll(tmp_path):
    (tmp_path / "eng.train").write_text(CONLL)
    ex = read_conll(tmp_path / "eng.train")
    assert [e.words for e in ex] == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"]]
    assert ex[0].labels == ["B-ORG", "O", "B-MISC", "O", "O"] and ex[1].line == 9
    assert infer_label_list(ex) == ["B-MISC", "B-ORG", "B-PER", "I-PER", "O"]
    with pytest.raises(DataFormatError, match=r"eng\.train:9: label 'B-PER' is not one of"):
        read_conll(tmp_path / "eng.train", label_list=["O", "B-ORG", "B-MISC"])
    (tmp_path / "bad").write_text("EU B-ORG\nrejects\n")
    with pytest.raises(DataFormatError, match=r"bad:2: word 'rejects' has no label column"):
        read_conll(tmp_path / "bad")
    assert read_conll(tmp_path / "bad", labeled=False)[0].labels is None
