"""Worker for the multi-process tests: trains the toy task through `train.fit`, then predicts.

Run it under torchrun (any number of processes or nodes) or plainly. The main
process writes the final weights, the predictions and the metrics to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toy import ToyTask, new_model, toy_dataset  # noqa: E402

from bert_tasks.config import TrainConfig  # noqa: E402
from bert_tasks.training.sharding import full_state_dict  # noqa: E402
from bert_tasks.training import checkpoint_dirs, fit, make_accelerator, predict  # noqa: E402


class FailingTask(ToyTask):
    """Kills this worker abruptly at a given step on a given rank, as a crashed node would."""

    def __init__(self, rank: int, fail_rank: int | None, fail_step: int | None, sleep: float, poison_step: int | None = None):
        super().__init__(poison_step)
        self.rank, self.fail_rank, self.fail_step, self.sleep = rank, fail_rank, fail_step, sleep

    def loss(self, outputs, batch):
        if self.rank == self.fail_rank and self.calls + 1 == self.fail_step:
            os._exit(17)
        if self.sleep:
            time.sleep(self.sleep)  # room for a test to SIGKILL between checkpoints
        return super().loss(outputs, batch)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--accum", type=int, default=1)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--save-steps", type=int, default=None)
    parser.add_argument("--resume-from", default=None)
    parser.add_argument("--fail-rank", type=int, default=None)
    parser.add_argument("--fail-step", type=int, default=None)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--pooling", default="cls")
    parser.add_argument("--family", default="bert")
    parser.add_argument("--attention-score", default="additive")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--poison-rank", type=int, default=None, help="this rank's loss turns NaN at --poison-step")
    parser.add_argument("--poison-step", type=int, default=None)
    parser.add_argument("--eval-size", type=int, default=31)  # odd: not divisible by 2 processes
    parser.add_argument("--select", type=float, default=None, help="keep the best eval loss every 2 steps; early "
                        "stopping with patience 2 and this threshold")
    args = parser.parse_args()

    torch.set_num_threads(1)
    cfg = TrainConfig(learning_rate=5e-4, batch_size=8, max_steps=args.steps, seed=5, gradient_accumulation_steps=args.accum,
                      save_steps=args.save_steps, save_total_limit=None, logging_steps=1,
                      mixed_precision=args.precision, skip_nonfinite=args.poison_rank is not None,
                      eval_steps=2 if args.select is not None else None)
    accelerator = make_accelerator(cfg)
    task = FailingTask(accelerator.process_index, args.fail_rank, args.fail_step, args.sleep,
                       args.poison_step if accelerator.process_index == args.poison_rank else None)
    model = new_model(family=args.family, pooling=args.pooling, attention_score=args.attention_score)
    # a kill before the first checkpoint leaves nothing to resume: that run starts over
    resume_from = args.resume_from if args.resume_from != "latest" or checkpoint_dirs(Path(args.out)) else None
    select = evaluate = None
    if args.select is not None:  # every process scores the gathered predictions: they must all decide alike
        from bert_tasks.training.selection import Selection

        dev = toy_dataset(args.eval_size, seed=9)
        select = Selection("eval_loss", lambda m: m.get("eval_loss"), maximize=False, patience=2, threshold=args.select)

        def evaluate(m, acc):
            logits = torch.tensor(np.stack(predict(m, task, dev, batch_size=4, accelerator=acc)["logits"]))
            return {"eval_loss": float(torch.nn.functional.cross_entropy(logits, torch.tensor(dev["labels"])))}
    result = fit(model, task, toy_dataset(), cfg, args.out, accelerator=accelerator, resume_from=resume_from,
                 evaluate=evaluate, select=select)
    model = accelerator.unwrap_model(model)
    # after training (before a forward leaves the root unsharded): what this process holds of the weights
    local = sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in model.parameters())
    units = sum(isinstance(m, torch.distributed.fsdp.FSDPModule) for m in model.modules())
    engine = getattr(accelerator, "deepspeed_engine_wrapped", None)
    zero_stage = engine.engine.zero_optimization_stage() if engine is not None else 0
    eval_set = toy_dataset(args.eval_size, seed=9)
    logits = predict(model, task, eval_set, batch_size=4, accelerator=accelerator)["logits"]
    weights = full_state_dict(accelerator, model) or model.state_dict()  # FSDP: gathered from the shards
    if accelerator.is_main_process:
        from safetensors.torch import save_file

        out = Path(args.out)
        save_file({k: v.detach().contiguous() for k, v in weights.items()}, out / "final.safetensors")
        predictions = np.stack(logits).argmax(-1)
        accuracy = float((predictions == np.array(eval_set["labels"])).mean())
        (out / "final.json").write_text(json.dumps({
            "processes": accelerator.num_processes, "distributed_type": str(accelerator.distributed_type),
            "fsdp_units": units, "zero_stage": zero_stage, "local_fraction": local / sum(v.numel() for v in weights.values()), "steps": result.global_step, "skipped": result.skipped_nonfinite, "train_loss": result.train_loss,
            "eval_count": len(logits), "accuracy": accuracy, "predictions": predictions.tolist(),
            "best": result.best, "stopped_early": result.stopped_early, "evals": result.eval_history,
        }))
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    main()
