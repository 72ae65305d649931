"""Bad input as a newcomer meets it (issue 19): each case runs ``albertkit.cli.main`` in-process and
expects exit status 2 and one stderr line that names the file, field or reason - never a traceback.

Checkpoints for the corrupt-file cases are copies of the shipped model (``albert-mini-en``) with one
file broken; the fine-tuned classifiers come from transformers (``hf_checkpoint``).
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
from pathlib import Path

import pytest

from albertkit.cli import main
from test_pipelines_common import hf_checkpoint

SHIPPED = Path(__file__).resolve().parents[1] / "src" / "albertkit" / "models" / "albert-mini-en"


def cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """Run ``albertkit ARGV`` in this process -> (exit status, stdout, stderr)."""
    root = logging.getLogger()
    for handler in root.handlers[:]:  # main() attaches logging to the stderr it finds; that is capsys'
        root.removeHandler(handler)
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str, *needles: str) -> str:
    """The one error line of ``err`` (warnings may precede it), checked to contain every needle."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("albertkit"), err
    assert ": error: " in lines[-1], err
    assert sum(": error: " in line for line in lines) == 1, err
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]


def model_copy(dest: Path, drop_weights: bool = False) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for item in SHIPPED.iterdir():
        if item.is_file() and not (drop_weights and item.name == "model.safetensors"):
            shutil.copy(item, dest / item.name)
    return dest


class _RunsCode:
    """Unpickling this would run ``os.system``: a checkpoint that must be refused, not loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> dict[str, Path]:
    import torch

    base = tmp_path_factory.mktemp("broken")
    out = {}
    weights = (SHIPPED / "model.safetensors").read_bytes()
    out["truncated"] = model_copy(base / "truncated", drop_weights=True)
    (out["truncated"] / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    out["garbage"] = model_copy(base / "garbage", drop_weights=True)
    (out["garbage"] / "model.safetensors").write_bytes(bytes(range(256)) * 40)
    out["shapes"] = model_copy(base / "shapes")
    config = json.loads((out["shapes"] / "config.json").read_text())
    config["hidden_size"] *= 2
    (out["shapes"] / "config.json").write_text(json.dumps(config))
    marker = base / "code-ran"
    out["pickle"] = model_copy(base / "pickle", drop_weights=True)
    with open(out["pickle"] / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"albert.embeddings.word_embeddings.weight": _RunsCode(marker)}, fh)
    out["zip_pickle"] = model_copy(base / "zip_pickle", drop_weights=True)
    torch.save({"weight": _RunsCode(marker)}, out["zip_pickle"] / "pytorch_model.bin")
    out["marker"] = marker
    return out


# ------------------------------------------------------------------ item 1: corrupt checkpoints
@pytest.mark.parametrize(
    "case, reason",
    [
        ("truncated", "corrupt or truncated"),
        ("garbage", "corrupt or truncated"),
        ("shapes", "shape mismatch"),
        ("pickle", "refused"),
        ("zip_pickle", "refused"),
    ],
)
def test_corrupt_checkpoint_is_one_line_exit_2(capsys, broken, case, reason):
    code, out, err = cli(capsys, "fill-mask", "The [MASK] is blue.", "--model", broken[case])
    assert code == 2 and out == ""
    line = error_line(err, str(broken[case]), reason)
    assert "weights_only=False" not in line and "weights_only` set to `False" not in line
    assert not broken["marker"].exists(), "unpickling ran code"


@pytest.mark.parametrize(
    "argv",
    [
        ["embed", "some text", "--model", "{m}"],
        ["classify", "some text", "--model", "{m}"],
        ["evaluate", "rte", "--model", "{m}", "--data", "{rte}"],
        ["export", "onnx", "{m}", "{out}/m.onnx"],
        ["evaluate-pretraining", "{m}", "{corpus}"],
    ],
)
def test_every_model_loading_command_reports_a_corrupt_checkpoint(capsys, broken, shared_data, tmp_path, argv):
    corpus = tmp_path / "c.txt"
    corpus.write_text("One sentence here. Another one there.\n\nA second document. It has two.\n")
    subs = {"m": str(broken["truncated"]), "rte": str(shared_data / "glue" / "RTE"), "out": str(tmp_path), "corpus": str(corpus)}
    code, _, err = cli(capsys, *(a.format(**subs) for a in argv))
    assert code == 2
    error_line(err, "model.safetensors", "corrupt or truncated")
    assert not (tmp_path / "m.onnx").exists()


# ------------------------------------------------------------ item 2: random heads are refused
@pytest.fixture(scope="module")
def sst2_model(tmp_path_factory, spiece_path) -> Path:
    return hf_checkpoint(
        tmp_path_factory.mktemp("sst2") / "m", spiece_path, "ForSequenceClassification", id2label={0: "0", 1: "1"}
    )


def test_evaluate_refuses_a_model_without_a_trained_head(capsys, shared_data):
    code, out, err = cli(capsys, "evaluate", "rte", "--model", SHIPPED, "--data", shared_data / "glue" / "RTE")
    assert code == 2 and out == ""
    error_line(err, str(SHIPPED), "no trained AlbertForSequenceClassification head", "fine-tune")


def test_evaluate_refuses_a_model_fine_tuned_for_other_labels(capsys, shared_data, sst2_model):
    code, out, err = cli(capsys, "evaluate", "rte", "--model", sst2_model, "--data", shared_data / "glue" / "RTE")
    assert code == 2 and out == ""
    error_line(err, "rte labels are ['entailment', 'not_entailment']", "['0', '1']")
    code, _, err = cli(capsys, "evaluate", "mnli", "--model", sst2_model, "--data", shared_data / "glue" / "RTE")
    assert code == 2
    error_line(err, "mnli has 3 label(s)", "fine-tuned with 2")


def test_export_refuses_a_random_head(capsys, tmp_path):
    code, _, err = cli(capsys, "export", "onnx", SHIPPED, tmp_path / "qa.onnx", "--task", "question-answering")
    assert code == 2
    error_line(err, "no trained AlbertForQuestionAnswering head", "qa_outputs")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ item 8: devices
@pytest.mark.parametrize("device, reason", [("foo", "unknown device 'foo'"), ("cuda:99", "not available"), ("tpu", "unknown device")])
def test_bad_device_is_one_line(capsys, device, reason):
    code, _, err = cli(capsys, "fill-mask", "The [MASK] is blue.", "--model", SHIPPED, "--device", device)
    assert code == 2
    error_line(err, reason)


def test_cuda_without_cuda_says_so(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = cli(capsys, "fill-mask", "The [MASK] is blue.", "--model", SHIPPED, "--device", "cuda")
    assert code == 2
    error_line(err, "device 'cuda' is not available", "--device cpu")


# ------------------------------------------------------------------ item 14: --version, fast --help
def test_version(capsys):
    import albertkit

    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"albertkit {albertkit.__version__}"


# ------------------------------------------------------------------ item 3: JSONL objects
@pytest.mark.parametrize("command", ["fill-mask", "embed", "features"])
def test_jsonl_objects_with_text_are_accepted(capsys, tmp_path, command):
    text = "The [MASK] is blue."
    (tmp_path / "in.jsonl").write_text(json.dumps({"text": text, "id": 7}) + "\n" + json.dumps(text) + "\n")
    code, out, err = cli(capsys, command, "-i", tmp_path / "in.jsonl", "--model", SHIPPED)
    assert code == 0, err
    from_file = json.loads(out)
    code, out, _ = cli(capsys, command, text, text, "--model", SHIPPED)
    assert code == 0 and json.loads(out) == from_file


def test_jsonl_text_of_the_wrong_type_names_line_and_field(capsys, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "a [MASK]"}\n{"text": ["a", "list"]}\n')
    code, _, err = cli(capsys, "fill-mask", "-i", tmp_path / "in.jsonl", "--model", SHIPPED)
    assert code == 2
    error_line(err, "in.jsonl, line 2: field 'text' must be a string, got list")


# ------------------------------------------------------------------ item 9: README commands
def test_tokenize_falls_back_to_the_shipped_model_offline(capsys, monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)  # an empty cache
    code, out, err = cli(capsys, "tokenize", "Hello, my dog is cute")
    assert code == 0, err
    assert json.loads(out)["input_ids"] == [2, 10975, 15, 51, 1952, 25, 10901, 3]  # same vocab as albert-base-v2
    assert "albert-mini-en" in err
    (tmp_path / "lines.txt").write_text("Hello, my dog is cute\n")
    code, out2, _ = cli(capsys, "tokenize", "-i", tmp_path / "lines.txt", "--model", SHIPPED)
    assert code == 0 and json.loads(out2)["input_ids"] == json.loads(out)["input_ids"]


def test_train_tokenizer_takes_a_folder_and_a_fallback_encoding(capsys, shared_data, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = (shared_data / "corpus" / "inaugural" / "1789-Washington.txt").read_text()
    (corpus / "a.txt").write_text(text[:20000])
    (corpus / "b.txt").write_bytes("Caf\xe9 au lait.\n".encode("latin-1"))
    code, _, err = cli(capsys, "train-tokenizer", corpus, "--vocab-size", "200", "--output", tmp_path / "tok")
    assert code == 2
    error_line(err, "b.txt, line 1: invalid UTF-8", "--fallback-encoding cp1252")
    code, out, err = cli(capsys, "train-tokenizer", corpus, "--vocab-size", "200", "--output", tmp_path / "tok",
                         "--fallback-encoding", "cp1252")
    assert code == 0, err
    assert (tmp_path / "tok" / "spiece.model").is_file()
    (tmp_path / "none").mkdir()
    code, _, err = cli(capsys, "train-tokenizer", tmp_path / "none", "--vocab-size", "200", "--output", tmp_path / "t2")
    assert code == 2
    error_line(err, "none: no *.txt files in this folder")


# ------------------------------------------------------------------ item 10: no silent wrong numbers
def test_top_k_beyond_the_vocabulary_is_refused(capsys):
    code, _, err = cli(capsys, "fill-mask", "The [MASK] is blue.", "--model", SHIPPED, "--top-k", "100000")
    assert code == 2
    error_line(err, "top_k 100000 exceeds the vocabulary (30000 tokens)")


def test_a_tokenizer_of_another_vocabulary_is_refused(capsys, tmp_path, shared_data):
    import sentencepiece as spm

    text = (shared_data / "corpus" / "inaugural" / "1789-Washington.txt").read_text()
    (tmp_path / "t.txt").write_text(text[:20000])
    spm.SentencePieceTrainer.train(input=str(tmp_path / "t.txt"), model_prefix=str(tmp_path / "spiece"), vocab_size=300,
                                   minloglevel=2, control_symbols=["[CLS]", "[SEP]", "[MASK]"], pad_id=0, unk_id=1,
                                   bos_id=-1, eos_id=-1)
    code, _, err = cli(capsys, "fill-mask", "The [MASK] is blue.", "--model", SHIPPED, "--tokenizer", tmp_path / "spiece.model")
    assert code == 2
    error_line(err, "the tokenizer has 300 pieces but the model's vocabulary has 30000")


# ------------------------------------------------------------------ item 11: clear messages
def test_output_pointing_at_a_folder_names_it(capsys, tmp_path):
    code, _, err = cli(capsys, "fill-mask", "The [MASK] is blue.", "--model", SHIPPED, "-o", tmp_path)
    assert code == 2
    error_line(err, f"{tmp_path} is a folder; give a file name to write")
    assert list(tmp_path.iterdir()) == []


def test_export_with_an_unsupported_opset_is_one_line(capsys, tmp_path):
    code, _, err = cli(capsys, "export", "onnx", SHIPPED, tmp_path / "m.onnx", "--opset", "5")
    assert code == 2 and len(err) < 300
    error_line(err, "--opset 5 is not supported; use 14 to 20")


def test_a_squad_file_given_to_a_glue_task_is_not_echoed(capsys, shared_data, tmp_path):
    code, _, err = cli(capsys, "finetune", "rte", "--model", SHIPPED, "--train", shared_data / "squad/dev-v1.1.json",
                       "--output", tmp_path / "o", "--max-steps", "1")
    assert code == 2
    line = error_line(err, "dev-v1.1.json:1: missing text column 'sentence1'", "is this a TSV/CSV file?")
    assert len(line) <= 300


# ------------------------------------------------------------------ item 14: smaller things
def test_help_does_not_import_torch():
    import subprocess
    import sys

    probe = "import sys; from albertkit.cli import build_parser; build_parser().format_help(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_embeddings_print_one_line_per_vector(capsys):
    code, out, _ = cli(capsys, "embed", "one text", "another", "--model", SHIPPED)
    assert code == 0
    assert len(out.splitlines()) == 4  # [, vector, vector, ]
    assert len(json.loads(out)) == 2 and len(json.loads(out)[0]) == 256


def test_saving_into_a_folder_keeps_it_present_and_links_what_it_keeps(tmp_path, monkeypatch):
    import albertkit.utils as utils

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "big.bin").write_bytes(b"x" * 1_000_000)
    (folder / "config.json").write_text("old")
    inode = (folder / "big.bin").stat().st_ino
    swaps = []
    exchange = utils._exchange
    monkeypatch.setattr(utils, "_exchange", lambda a, b: swaps.append(exchange(a, b)) or swaps[-1])
    with utils.atomic_folder(folder) as tmp:
        (tmp / "config.json").write_text("new")
    assert (folder / "config.json").read_text() == "new"
    assert (folder / "big.bin").stat().st_ino == inode  # linked, not copied
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary or .old- folders left
    import sys

    if sys.platform == "linux":
        assert swaps == [True]  # one atomic exchange: the folder was never missing


def test_multiple_choice_has_a_subcommand(capsys, tmp_path, spiece_path):
    from albertkit import pipeline

    model = hf_checkpoint(tmp_path / "mc", spiece_path, "ForMultipleChoice")
    item = {"question": "The sky is", "choices": ["blue.", "a fish.", "loud."]}
    code, out, err = cli(capsys, "multiple-choice", "--model", model, "--question", item["question"],
                         *[a for c in item["choices"] for a in ("--choice", c)])
    assert code == 0, err
    assert json.loads(out) == pipeline("multiple-choice", model=str(model))(item)
    (tmp_path / "in.jsonl").write_text(json.dumps(item) + "\n" + json.dumps({"question": "q", "choices": "a"}) + "\n")
    code, _, err = cli(capsys, "multiple-choice", "--model", model, "-i", tmp_path / "in.jsonl")
    assert code == 2
    error_line(err, "in.jsonl, line 2: field 'choices' must be a list, got str")
    code, _, err = cli(capsys, "multiple-choice", "--model", model, "--question", "q", "--choice", "only one")
    assert code == 2
    error_line(err, "at least two --choice")


def test_other_libraries_log_only_warnings(capsys):
    # ONNX Runtime's quantizer printed 29 INFO lines on `export --int8`: INFO is albertkit's own.
    code, _, _ = cli(capsys, "tokenize", "Hello", "--model", SHIPPED)
    assert code == 0
    assert logging.getLogger("albertkit.export_commands").isEnabledFor(logging.INFO)
    assert not logging.getLogger("onnxruntime.quantization").isEnabledFor(logging.INFO)
    assert not logging.getLogger().isEnabledFor(logging.INFO)
