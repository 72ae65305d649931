"""``--seed`` makes runs reproducible (issue 19, item 12): the new task head is initialised after
seeding, so two identical fine-tuning runs give identical losses and weights, whatever the global
RNG state was before."""

from __future__ import annotations

import csv
import dataclasses

import pytest


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, spiece_path):
    import torch

    from albertkit import AlbertConfig, AlbertModel, AlbertTokenizer

    folder = tmp_path_factory.mktemp("base")
    config = dataclasses.replace(AlbertConfig.from_name("tiny"), vocab_size=30000, max_position_embeddings=512)
    torch.manual_seed(0)
    AlbertModel(config).save_pretrained(str(folder))
    AlbertTokenizer.from_pretrained(spiece_path.parent).save_pretrained(folder)
    return folder


def _losses(folder):
    with open(folder / "train_log.csv", newline="") as fh:
        return [row["loss"] for row in csv.DictReader(fh)]


def test_two_identical_finetune_runs_are_identical(tiny_base, shared_data, tmp_path):
    import torch
    from safetensors.torch import load_file

    from albertkit.finetuning.run import finetune

    runs = []
    for k, noise in enumerate((1, 2)):
        torch.manual_seed(noise)  # a different global RNG state before each run must not matter
        torch.rand(noise)
        out = tmp_path / f"run{k}"
        finetune("rte", tiny_base, train=shared_data / "glue/RTE", output=out, max_steps=4, batch_size=4,
                 max_train_examples=16, max_seq_length=64, seed=7)
        runs.append((_losses(out), load_file(out / "model" / "model.safetensors")))
    (losses_a, weights_a), (losses_b, weights_b) = runs
    assert losses_a and losses_a == losses_b
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key
