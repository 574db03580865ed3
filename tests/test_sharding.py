"""Sharded training through Accelerate on CPU, with real processes: ``accelerate launch --config_file
recipes/accelerate/fsdp-cpu.yaml`` (FSDP2) or ``deepspeed-cpu.yaml`` (ZeRO-2; ZeRO-3 alike), 2 processes over
gloo, shards the model, trains as one plain process does with the same global batch, saves a whole transformers
folder and resumes exactly."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file

from bert_tasks.checkpoint import load_pretrained
from bert_tasks.training.sharding import repeated_blocks
from bert_tasks.tasks.squad.synthetic import write_synthetic_squad
from test_distributed import ENV, WORKER, free_port, max_diff, outcome
from toy import FAMILY_WORDS as WORDS
from toy import new_model, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]
FSDP_CPU = ROOT / "recipes" / "accelerate" / "fsdp-cpu.yaml"
DDP_CPU = ROOT / "recipes" / "accelerate" / "cpu-2proc.yaml"
ZERO2_CPU = ROOT / "recipes" / "accelerate" / "deepspeed-cpu.yaml"
needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="pip install deepspeed")


@pytest.fixture(scope="module")
def engines(tmp_path_factory) -> dict[str, Path]:
    """The accelerate configs: FSDP, ZeRO-2, and ZeRO-3 (deepspeed-cpu.yaml with stage 3)."""
    zero3 = tmp_path_factory.mktemp("zero3") / "deepspeed-zero3-cpu.yaml"
    zero3.write_text(ZERO2_CPU.read_text().replace("zero_stage: 2", "zero_stage: 3"))
    return {"fsdp": FSDP_CPU, "zero2": ZERO2_CPU, "zero3": zero3}


ENGINES = [pytest.param("fsdp"), pytest.param("zero2", marks=needs_deepspeed),
           pytest.param("zero3", marks=[needs_deepspeed, pytest.mark.slow])]


def sharded_as(info: dict, engine: str) -> bool:
    """The run was sharded by that engine: FSDP's units (2 layers + the root) holding about half the weights
    per process, or DeepSpeed's ZeRO stage."""
    if engine == "fsdp":
        return (info["distributed_type"] == "DistributedType.FSDP" and info["fsdp_units"] == 3
                and 0.45 <= info["local_fraction"] <= 0.55)
    return info["distributed_type"] == "DistributedType.DEEPSPEED" and info["zero_stage"] == int(engine[-1])
#: fp32, so that 2 processes can match 1 to 1e-6 (bf16 would round differently in the gradient reduce)
FP32 = ["--set", "train.mixed_precision=no", "--set", "train.num_threads=1"]


def accelerate_launch(*argv, config: Path = FSDP_CPU) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
            "--main_process_port", str(free_port()), *map(str, argv)]


def run(cmd: list[str], timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done


def test_the_wrap_units_are_the_encoder_layers_named_by_the_model():
    assert repeated_blocks(new_model()) == ["EncoderLayer"]
    hf = transformers.BertForSequenceClassification(transformers.BertConfig(
        vocab_size=50, hidden_size=12, num_hidden_layers=2, num_attention_heads=2, intermediate_size=13))
    assert repeated_blocks(hf) == ["BertLayer"]
    distil = transformers.DistilBertForSequenceClassification(transformers.DistilBertConfig(
        vocab_size=50, dim=12, n_layers=2, n_heads=2, hidden_dim=13))
    assert repeated_blocks(distil) == ["TransformerBlock"]


# --------------------------------------------------------------------------- the training loop (toy task)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The reference: 1 plain process, fp32, global batch 16 as 2 accumulated micro-batches of 8."""
    out = tmp_path_factory.mktemp("plain")
    run([sys.executable, WORKER, "--out", str(out), "--precision", "no", "--accum", "2"])
    return outcome(out)


# ZeRO-2 here is the suite's slowest test (49 s); its saving and bf16 master weights stay in the default suite below
@pytest.mark.parametrize("engine", [ENGINES[0], pytest.param("zero2", marks=[needs_deepspeed, pytest.mark.slow]), ENGINES[2]])
def test_two_sharded_processes_match_one_plain_process(tmp_path, plain, engines, engine):
    """fp32, global batch 16: 2 sharded processes x 8 against 1 process x 8 x 2 accumulated."""
    run(accelerate_launch(WORKER, "--out", tmp_path, "--precision", "no", config=engines[engine]))
    (weights, info), (ref_weights, ref) = outcome(tmp_path), plain
    assert info["processes"] == 2 and sharded_as(info, engine)
    assert ref["fsdp_units"] == ref["zero_stage"] == 0 and ref["local_fraction"] == 1.0
    assert max_diff(weights, ref_weights) <= 1e-6
    assert abs(info["train_loss"] - ref["train_loss"]) <= 1e-6
    assert info["eval_count"] == ref["eval_count"] == 31 and info["predictions"] == ref["predictions"]


@pytest.mark.parametrize("engine", ["fsdp", pytest.param("zero2", marks=[needs_deepspeed, pytest.mark.slow]), ENGINES[2]])
def test_sigkill_then_resume_reaches_the_uninterrupted_weights(tmp_path, engines, engine):
    args = [WORKER, "--precision", "no", "--save-steps", "2"]
    config = engines[engine]
    run(accelerate_launch(*args, "--out", tmp_path / "whole", config=config))
    out = tmp_path / "run"
    launcher = subprocess.Popen(accelerate_launch(*args, "--out", out, "--sleep", "0.4", config=config), env=ENV,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while not (out / "checkpoints" / "step-2" / "trainer_state.json").exists():
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(0.05)
    os.killpg(launcher.pid, signal.SIGKILL)  # the launcher and both workers, mid-run
    launcher.wait()
    assert not (out / "final.json").exists()
    done = run(accelerate_launch(*args, "--out", out, "--resume-from", "latest", config=config))
    assert "resumed from" in done.stdout + done.stderr
    (weights, info), (ref_weights, _) = outcome(out), outcome(tmp_path / "whole")
    assert sharded_as(info, engine)
    assert max_diff(weights, ref_weights) <= 1e-6


# --------------------------------------------------------------------------- the CLI, every kind of task


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("fsdp")
    tiny_checkpoint(root / "bert", "bert")
    # no dropout: each process draws its own masks, so only a deterministic model can match 1 process exactly
    config = json.loads((root / "bert" / "config.json").read_text())
    (root / "bert" / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.0,
                                                           "attention_probs_dropout_prob": 0.0}))
    rng = random.Random(0)
    sentence = lambda: " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))  # noqa: E731
    (root / "MRPC").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (root / "MRPC" / name).write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                                          + "".join(f"{i % 2}\t{i}\t{i + 50}\t{sentence()}\t{sentence()}\n" for i in range(21)))
    write_synthetic_squad(root / "train.json", n_articles=1, seed=1, version_2=False)
    (root / "corpus.txt").write_text("\n".join(sentence() + " " + sentence() for _ in range(80)) + "\n")
    return root


TASKS = {
    "glue": (["finetune", "glue", "--task", "mrpc", "--data-dir", "MRPC", "--max-seq-length", "64", "--batch-size", "4", "--max-steps", "3"],
             transformers.AutoModelForSequenceClassification),
    # 2 steps of 2 x 2: the synthetic article's windows fill 5 batches of 2, and an epoch's odd last batch would
    # be a step of its own in 1 process but not in 2 (a data boundary, not sharding: DDP does the same)
    "squad": (["finetune", "squad", "--train-file", "train.json", "--validation-file", "train.json",
               "--max-seq-length", "128", "--doc-stride", "32", "--batch-size", "2", "--max-steps", "2"],
              transformers.AutoModelForQuestionAnswering),
    "mlm": (["pretrain", "mlm", "--train-file", "corpus.txt", "--max-seq-length", "32", "--batch-size", "4", "--max-steps", "3"],
            transformers.AutoModelForMaskedLM),
}


@pytest.mark.parametrize("engine, task", [("fsdp", "glue"), ("fsdp", "squad"), ("fsdp", "mlm"),
                                          pytest.param("zero2", "glue", marks=needs_deepspeed),
                                          pytest.param("zero2", "mlm", marks=[needs_deepspeed, pytest.mark.slow]),
                                          pytest.param("zero3", "mlm", marks=[needs_deepspeed, pytest.mark.slow]),
                                          pytest.param("zero3", "glue", marks=[needs_deepspeed, pytest.mark.slow])])
def test_cli_sharded_saves_the_plain_runs_whole_folder(data, engines, engine, task, tmp_path):
    """The same run on 2 sharded processes (batch 4 each) and on 1 plain process (4, accumulated twice; masked-LM:
    2 DDP processes, since each process draws its own masks): the same
    weights and dev scores, and a complete transformers folder (every head weight present). Each run stays within
    its first epoch (see squad's)."""
    argv, auto_class = TASKS[task]
    common = [*argv, "--model", "bert", "--learning-rate", "1e-3", *FP32]
    run(accelerate_launch("-m", "bert_tasks.cli", *common, "--output-dir", tmp_path / "fsdp", config=engines[engine]),
        cwd=data)
    if task == "mlm":  # each process draws its own training masks: the reference is 2 DDP processes, unsharded
        run(accelerate_launch("-m", "bert_tasks.cli", *common, "--output-dir", tmp_path / "plain", config=DDP_CPU), cwd=data)
    else:
        run([sys.executable, "-m", "bert_tasks.cli", *common, "--output-dir", str(tmp_path / "plain"),
             "--set", "train.gradient_accumulation_steps=2"], cwd=data)
    sharded, plain = load_file(tmp_path / "fsdp" / "model.safetensors"), load_file(tmp_path / "plain" / "model.safetensors")
    assert max_diff(sharded, plain) <= 1e-6
    scores = [json.loads((tmp_path / kind / "eval_results.json").read_text()) for kind in ("fsdp", "plain")]
    assert scores[0].pop("precision") == scores[1].pop("precision") == "fp32"  # the results say what they ran in
    assert scores[0] == pytest.approx(scores[1], rel=1e-6, abs=1e-6)
    if task == "glue":
        assert (tmp_path / "fsdp" / "eval_predictions.jsonl").read_text() == (tmp_path / "plain" / "eval_predictions.jsonl").read_text()
    hf, info = auto_class.from_pretrained(tmp_path / "fsdp", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ours = load_pretrained(tmp_path / "fsdp", task=task).eval()
    ids = torch.tensor([[101, 2000, 2001, 2002, 102, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        theirs, mine = hf.eval()(input_ids=ids, attention_mask=mask), ours(ids, mask)
    for key in ("logits",) if task != "squad" else ("start_logits", "end_logits"):
        assert (getattr(theirs, key) - getattr(mine, key)).abs().max() <= 1e-5


# --------------------------------------------------------------------------- settings, in one line


def test_fsdp1_on_cpu_is_refused_in_one_line(monkeypatch):
    from bert_tasks.errors import BertTasksError
    from bert_tasks.training.sharding import cpu_fsdp_plugin

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("FSDP_VERSION", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BertTasksError, match="fsdp_version: 2"):
        cpu_fsdp_plugin()
    monkeypatch.setenv("FSDP_VERSION", "2")
    assert cpu_fsdp_plugin().fsdp_version == 2
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cpu_fsdp_plugin() is None  # on a GPU Accelerate selects FSDP itself...
    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(BertTasksError, match="fsdp_version: 2"):  # ...but FSDP1 is refused there too
        cpu_fsdp_plugin()
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    assert cpu_fsdp_plugin() is None


def test_every_fsdp_config_is_fsdp2_and_names_no_layer_class():
    import yaml

    configs = [yaml.safe_load(path.read_text()) for path in sorted((ROOT / "recipes" / "accelerate").glob("*.yaml"))]
    fsdp = [c["fsdp_config"] for c in configs if c["distributed_type"] == "FSDP"]
    assert len(fsdp) == 2 and all(c["fsdp_version"] == 2 and "fsdp_transformer_layer_cls_to_wrap" not in c for c in fsdp)
    zero = [c["deepspeed_config"] for c in configs if c["distributed_type"] == "DEEPSPEED"]
    recipe_owned = ("gradient_accumulation_steps", "gradient_clipping", "train_micro_batch_size_per_gpu")
    assert len(zero) == 3 and not any(key in c for c in zero for key in recipe_owned)


@needs_deepspeed
def test_a_bf16_zero_run_saves_the_fp32_master_weights(tmp_path):
    """DeepSpeed keeps bf16 weights in the module and fp32 masters in the optimizer: the saved folder has the masters."""
    run(accelerate_launch(WORKER, "--out", tmp_path, "--precision", "bf16", config=ZERO2_CPU))
    weights, info = outcome(tmp_path)
    assert info["zero_stage"] == 2 and all(t.dtype == torch.float32 for t in weights.values())
    assert any(not torch.equal(t, t.bfloat16().float()) for t in weights.values())  # not bf16 values in fp32 dress


@needs_deepspeed
def test_zero_auto_values_come_from_the_recipe_and_a_disagreeing_config_is_refused():
    from types import SimpleNamespace

    from accelerate.utils import DeepSpeedPlugin, DistributedType

    from bert_tasks.config import TrainConfig
    from bert_tasks.errors import BertTasksError
    from bert_tasks.training.sharding import configure_deepspeed

    def accelerator(**config):
        plugin = DeepSpeedPlugin(hf_ds_config={"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps":
                                               "auto", "gradient_clipping": "auto", **config, "zero_optimization": {"stage": 2}})
        return SimpleNamespace(distributed_type=DistributedType.DEEPSPEED, state=SimpleNamespace(deepspeed_plugin=plugin))

    cfg = TrainConfig(batch_size=6, gradient_accumulation_steps=3, max_grad_norm=0.5)
    filled = accelerator()
    configure_deepspeed(filled, cfg)
    plugin = filled.state.deepspeed_plugin
    assert [plugin.get_value(k) for k in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                                          "gradient_clipping")] == [6, 3, 0.5]
    configure_deepspeed(accelerator(gradient_clipping=0.5), cfg)  # agreeing values stand
    with pytest.raises(BertTasksError, match="gradient_accumulation_steps=2 but the recipe says 3"):
        configure_deepspeed(accelerator(gradient_accumulation_steps=2), cfg)
    with pytest.raises(BertTasksError, match="skip_nonfinite"):
        configure_deepspeed(accelerator(), TrainConfig(skip_nonfinite=True))
