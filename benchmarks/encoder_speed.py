"""Training-step throughput of our encoder against ``transformers.BertModel`` (SDPA) on identical weights.

One step is forward on a padded batch, a scalar loss, and backward; there is no
optimizer, so the figures are the model's own cost. Both models share weights
(HF's random init copied into ours through the checkpoint table) and must agree
to 1e-5 before anything is timed. Runs of the two alternate (AB, BA, AB, ...)
so that noise from other work on the machine falls on both alike; each cell is
the median over rounds. MFU is against the matmul peak measured in the same run
(:mod:`benchmarks.peak`).

Variants of our encoder timed in the same rounds add columns: ``--unpad`` (per-token work on
the real tokens only, :class:`bert_tasks.model.RealTokens`; checked at real positions) and
``--compile`` (layers compiled by ``torch.compile``, :mod:`bert_tasks.training.compiled`; its compile
time, the first step of each dtype including one run, is reported apart from tokens/s).

    python -m benchmarks encoder_speed [--configs minilm,base] [--seq 128,384] [--dtypes fp32,bf16] [--unpad] [--compile] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import statistics
import time
from dataclasses import dataclass, field

import torch
import transformers

from bert_tasks.checkpoint import load_hf_state_dict
from bert_tasks.model import BertConfig, BertModel, set_unpadding

from ._record import load_note
from .peak import measure_matmul_peak

#: (layers, hidden, heads, intermediate, vocab, max positions)
CONFIGS = {
    "minilm": (6, 384, 12, 1536, 30522, 512),
    "base": (12, 768, 12, 3072, 30522, 512),
    "tiny": (2, 32, 4, 37, 99, 40),  # the test suite's odd sizes; for smoke runs only
}
#: Batch size per (config, T): small enough that the whole default run fits in a few minutes on 2 cores.
BATCH = {("minilm", 128): 8, ("minilm", 384): 4, ("base", 128): 4, ("base", 384): 2}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
PARITY_TOL = 1e-5
FLOPS_NOTE = (
    "FLOPs per step = 6·N·B·T + 12·L·B·T²·C (forward + backward = 3 × forward; N = non-embedding encoder "
    "parameters, the second term the QKᵀ and PV products), counted over all B·T positions, padding included."
)


@dataclass
class Variant:
    """Another build of our encoder, timed in the same rounds as ours and HF."""

    tokens_per_s: float
    ratio: float  # median paired variant/HF speed ratio
    parity: float  # the eval check against HF (real positions only when unpadded)
    first_step_seconds: float | None = None  # compile (or recompile) + one run, for the compiled variant


#: variant key -> column label
VARIANTS = {"unpad": "ours+unpad", "compile": "ours+compile"}


@dataclass
class Result:
    config: str
    seq: int
    batch: int
    dtype: str
    ours: float  # tokens (B·T positions) per second, median over rounds
    hf: float
    ratio: float  # median over rounds of the paired ours/HF speed ratio: drifts in machine load cancel
    parity: float  # max |ours - HF| over last_hidden_state and pooler_output, fp32 eval
    flops_per_step: float
    peak: float | None  # GFLOP/s of the matching dtype, None if not measured
    variants: dict[str, Variant] = field(default_factory=dict)

    def mfu(self, tokens_per_s: float) -> float | None:
        if not self.peak:
            return None
        return tokens_per_s / (self.batch * self.seq) * self.flops_per_step / (self.peak * 1e9)


def build_pair(name: str, dropout: float) -> tuple[BertModel, torch.nn.Module]:
    """Our encoder and HF's, with HF's random weights copied into ours."""
    layers, hidden, heads, inter, vocab, positions = CONFIGS[name]
    sizes = dict(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=inter, max_position_embeddings=positions,
        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
    )
    torch.manual_seed(0)
    hf = transformers.BertModel(transformers.BertConfig(**sizes, attn_implementation="sdpa"))
    ours = BertModel(BertConfig(**sizes))
    load_hf_state_dict(ours, hf.state_dict(), task=None)
    return ours, hf


def make_batch(vocab: int, batch: int, seq: int) -> tuple[torch.Tensor, ...]:
    """Random ids with realistic padding: lengths between 60% and 100% of T, the first row full."""
    gen = torch.Generator().manual_seed(seq * 1000 + batch)
    ids = torch.randint(1, vocab, (batch, seq), generator=gen)
    lengths = torch.randint(int(0.6 * seq), seq + 1, (batch,), generator=gen)
    lengths[0] = seq
    mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
    ids = ids * mask  # pad id 0 after each sequence's end
    types = (torch.arange(seq)[None, :] >= lengths[:, None] // 2).long() * mask  # two segments, as in QA pairs
    return ids, mask, types


def parity(ours: torch.nn.Module, hf: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """Max |ours - HF| over the pooler and last_hidden_state: all positions, or only real ones when unpadded."""
    ours.eval(), hf.eval()
    with torch.no_grad():
        a, b = ours(*inputs), hf(*inputs)
    positions = inputs[1].bool() if getattr(ours, "unpad", False) else slice(None)
    return max((a.last_hidden_state[positions] - b.last_hidden_state[positions]).abs().max().item(),
               (a.pooler_output - b.pooler_output).abs().max().item())


def step(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], weights: tuple[torch.Tensor, torch.Tensor],
         dtype: torch.dtype) -> None:
    """forward, scalar loss, backward; grads set to None first, as an optimizer's zero_grad would."""
    model.zero_grad(set_to_none=True)
    autocast = torch.autocast("cpu", dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
    with autocast:
        out = model(*inputs)
        loss = (out.last_hidden_state.float() * weights[0]).sum() + (out.pooler_output.float() * weights[1]).sum()
    loss.backward()


def timed(model, inputs, weights, dtype, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step(model, inputs, weights, dtype)
    return (time.perf_counter() - start) / steps


def flops_per_step(config: BertConfig, non_embedding: int, batch: int, seq: int) -> float:
    L, C = config.num_hidden_layers, config.hidden_size
    return 6 * non_embedding * batch * seq + 12 * L * batch * seq**2 * C


def bench_cell(ours: BertModel, hf: torch.nn.Module, name: str, seq: int, batch: int, dtypes: list[str],
               rounds: int, min_seconds: float, variants: dict[str, BertModel] | None = None) -> list[Result]:
    """All dtypes of one (config, T) cell; raises before timing if any build disagrees with HF."""
    inputs = make_batch(ours.config.vocab_size, batch, seq)
    models = {"ours": ours, "hf": hf, **(variants or {})}
    diffs = {}
    for key, model in models.items():
        if key != "hf":
            diffs[key] = parity(model, hf, inputs)  # also compiles the eval graph of a compiled variant
            if diffs[key] > PARITY_TOL:
                raise AssertionError(f"{name} T={seq}: {key} and HF differ by {diffs[key]:.2e} > {PARITY_TOL:g}; "
                                     "not timing")
    gen = torch.Generator().manual_seed(1)
    C = ours.config.hidden_size
    weights = (torch.randn(batch, seq, C, generator=gen), torch.randn(batch, C, generator=gen))
    non_embedding = sum(p.numel() for p in ours.encoder.parameters())
    flops = flops_per_step(ours.config, non_embedding, batch, seq)
    for model in models.values():
        model.train()  # dropout on, as in fine-tuning
    results = []
    for dname in dtypes:
        dtype = DTYPES[dname]
        first = {}
        if "compile" in models:  # the first step of each dtype compiles (or recompiles): timed apart
            first["compile"] = timed(models["compile"], inputs, weights, dtype, 1)
        warm = [timed(m, inputs, weights, dtype, 1) for m in models.values()]  # allocator, oneDNN kernels, autocast
        steps = max(1, math.ceil(min_seconds / min(warm)))  # several steps per run when a step is short
        times: dict[str, list[float]] = {key: [] for key in models}
        for r in range(rounds):
            order = list(models.items()) if r % 2 == 0 else list(models.items())[::-1]
            for key, model in order:
                times[key].append(timed(model, inputs, weights, dtype, steps))
        tokens = batch * seq
        paired = statistics.median(h / o for o, h in zip(times["ours"], times["hf"]))
        result = Result(
            name, seq, batch, dname, tokens / statistics.median(times["ours"]), tokens / statistics.median(times["hf"]),
            paired, diffs["ours"], flops, peak=None,
        )
        line = (f"  {name} T={seq} B={batch} {dname}: ours {result.ours:,.0f} tok/s, HF {result.hf:,.0f} "
                f"tok/s, ratio {result.ratio:.3f}")
        for key in variants or {}:
            variant = Variant(tokens / statistics.median(times[key]),
                              statistics.median(h / v for v, h in zip(times[key], times["hf"])), diffs[key],
                              first.get(key))
            result.variants[key] = variant
            line += f"; {VARIANTS[key]} {variant.tokens_per_s:,.0f} tok/s, ratio {variant.ratio:.3f}"
        results.append(result)
        print(line + f" ({rounds} rounds × {steps} steps)", flush=True)
    return results


def table(results: list[Result]) -> str:
    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f}%"

    keys = [key for key in VARIANTS if any(key in r.variants for r in results)]
    head = "| config | T | B | dtype | ours tok/s | HF tok/s | ours/HF | MFU ours | MFU HF | peak GFLOP/s | parity |"
    rule = "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    for key in keys:
        label = VARIANTS[key]
        head += f" {label} tok/s | {label}/HF | MFU {label} | parity {label} |"
        rule += "---:|---:|---:|---:|"
        if key == "compile":
            head += " compile s |"
            rule += "---:|"
    lines = [head, rule]
    for r in results:
        peak = "–" if not r.peak else f"{r.peak:.0f}"
        line = (
            f"| {r.config} | {r.seq} | {r.batch} | {r.dtype} | {r.ours:,.0f} | {r.hf:,.0f} | {r.ratio:.3f} | "
            f"{pct(r.mfu(r.ours))} | {pct(r.mfu(r.hf))} | {peak} | {r.parity:.1e} |"
        )
        for key in keys:
            v = r.variants[key]
            line += f" {v.tokens_per_s:,.0f} | {v.ratio:.3f} | {pct(r.mfu(v.tokens_per_s))} | {v.parity:.1e} |"
            if key == "compile":
                line += f" {v.first_step_seconds:.0f} |"
        lines.append(line)
    return "\n".join(lines)


def notes(args: argparse.Namespace, load: tuple[float, float]) -> str:
    unpad_note = (
        "ours+unpad = our encoder with `set_unpadding` (projections, feed-forward, LayerNorm and dropout on the "
        "real tokens only; attention pads Q/K/V back to [B, T]); tok/s still counts all B·T positions, and MFU "
        "the FLOPs of all of them, so both say what the same batch costs; `parity ours+unpad` is taken at real "
        "positions and the pooler (its padded positions are zeros by design)."
    ) if args.unpad else None
    compile_note = (
        f"ours+compile = our encoder with each layer compiled by `torch.compile` (`bert_tasks.training.compiled`, scope "
        f"{args.compile_scope!r}, inductor, gcc); `compile s` = wall time of the first training step of that dtype "
        "(compile or recompile + one run; later cells reuse the graphs where shapes allow), kept out of its tok/s; "
        "`parity ours+compile` = the same eval check as `parity`, through the compiled graphs."
    ) if args.compile else None
    return "\n".join(filter(None, [
        f"Training step = forward on a padded batch (lengths 60–100% of T) in train mode (dropout 0.1), "
        f"loss = Σ last_hidden_state·R₁ + Σ pooler_output·R₂ (fixed random R), backward; **no optimizer step**. "
        f"bf16 = `torch.autocast('cpu', dtype=torch.bfloat16)`. Our weights are HF's, checked to ≤ {PARITY_TOL:g} "
        f"(fp32, eval, all positions) before timing; `parity` is that max abs difference.",
        f"Ours and HF alternate AB/BA for {args.rounds} rounds after a warm-up step each; tok/s = B·T / median "
        "step time (padded positions count); ours/HF = median over rounds of the ratio within a round.",
        f"MFU = FLOPs per step / step time / matmul peak of the same dtype, measured in this run "
        f"(best of square matmuls; highest of the readings taken before, between and after the cells). {FLOPS_NOTE}",
        f"{load_note(*load)}; other work would lower both the peak and the throughputs, so the paired ours/HF "
        "ratio is the robust figure.",
        unpad_note,
        compile_note,
    ]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks encoder_speed", description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="minilm,base", help=f"comma list of {', '.join(CONFIGS)}")
    parser.add_argument("--seq", default="128,384", help="comma list of sequence lengths")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma list of fp32, bf16")
    parser.add_argument("--rounds", type=int, default=4, help="timed AB rounds per cell")
    parser.add_argument("--batch", type=int, help="override the batch size of every cell")
    parser.add_argument("--min-seconds", type=float, default=0.5, help="repeat short steps within a run to this long")
    parser.add_argument("--peak-seconds", type=float, default=2.0, help="matmul-peak budget per dtype; 0 skips MFU")
    parser.add_argument("--unpad", action="store_true", help="add an ours+unpad column (real tokens only)")
    parser.add_argument("--compile", action="store_true", help="add an ours+compile column (torch.compile)")
    parser.add_argument("--warm-compile-cache", action="store_true",
                        help="reuse inductor's on-disk cache (default: a fresh cache, so compile times are cold)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the run (default: torch's)")
    parser.add_argument("--compile-scope", default="layer", choices=("layer", "model"),
                        help="compile each encoder layer or the whole model")
    parser.add_argument("--quick", action="store_true", help="MiniLM at T=128 only, 3 rounds")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--profile", action="store_true",
                        help="instead of timing, print torch.profiler op tables for both models (first config/T/dtype)")
    args = parser.parse_args(argv)
    if args.quick:
        args.configs, args.seq, args.rounds = "minilm", "128", min(args.rounds, 3)
    args.configs, args.dtypes = args.configs.split(","), args.dtypes.split(",")
    args.seq = [int(s) for s in args.seq.split(",")]
    for name in args.configs:
        if name not in CONFIGS:
            parser.error(f"unknown config {name!r}; choose from {', '.join(CONFIGS)}")
    for name in args.dtypes:
        if name not in DTYPES:
            parser.error(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}")
    return args


def measure_peaks(dtypes: list[str], seconds: float) -> dict[str, float | None]:
    return {d: measure_matmul_peak(DTYPES[d], seconds) if seconds > 0 else None for d in dtypes}


def run(args: argparse.Namespace) -> list[Result]:
    readings = [measure_peaks(args.dtypes, args.peak_seconds / 2)]
    results: list[Result] = []
    for name in args.configs:
        ours, hf = build_pair(name, dropout=0.1)
        variants = {}
        if args.unpad:
            variants["unpad"] = copy.deepcopy(ours)
            set_unpadding(variants["unpad"])
        if args.compile:
            from bert_tasks.training.compiled import compile_model

            variants["compile"] = copy.deepcopy(ours)
            compile_model(variants["compile"], args.compile_scope)
        for seq in args.seq:
            batch = args.batch or BATCH.get((name, seq), 2)
            results += bench_cell(ours, hf, name, seq, batch, args.dtypes, args.rounds, args.min_seconds, variants)
            readings.append(measure_peaks(args.dtypes, args.peak_seconds / 2))
        del ours, hf, variants
    # Load only ever lowers a reading, so the highest one is the best estimate of what the machine can do.
    peaks = {d: max(r[d] for r in readings) if args.peak_seconds > 0 else None for d in args.dtypes}
    for r in results:
        r.peak = peaks[r.dtype]
    return results


def profile(args: argparse.Namespace) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    name, seq, dname = args.configs[0], args.seq[0], args.dtypes[0]
    batch = args.batch or BATCH.get((name, seq), 2)
    ours, hf = build_pair(name, dropout=0.1)
    inputs = make_batch(ours.config.vocab_size, batch, seq)
    C = ours.config.hidden_size
    weights = (torch.randn(batch, seq, C), torch.randn(batch, C))
    ours.train(), hf.train()
    shares: dict[str, dict[str, float]] = {}
    totals: dict[str, float] = {}
    for label, model in (("ours", ours), ("HF", hf)):
        for _ in range(2):
            step(model, inputs, weights, DTYPES[dname])
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                step(model, inputs, weights, DTYPES[dname])
        print(f"\n=== {label}: {name} T={seq} B={batch} {dname}, 3 steps ===")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        events = prof.key_averages()
        totals[label] = sum(e.self_cpu_time_total for e in events) / 3e6  # seconds per step
        shares[label] = {e.key: e.self_cpu_time_total / 3e6 for e in events}
    top = sorted(set(shares["ours"]) | set(shares["HF"]), key=lambda k: -max(shares["ours"].get(k, 0), shares["HF"].get(k, 0)))[:16]
    lines = [f"Profile: {name} T={seq} B={batch} {dname}, train step (dropout 0.1), self CPU time per step, 3 steps "
             f"after 2 warm-up; {torch.get_num_threads()} threads.", "",
             "| op | ours s | ours % | HF s | HF % |", "|---|---:|---:|---:|---:|"]
    for key in top:
        o, h = shares["ours"].get(key, 0.0), shares["HF"].get(key, 0.0)
        lines.append(f"| `{key}` | {o:.3f} | {100 * o / totals['ours']:.1f}% | {h:.3f} | {100 * h / totals['HF']:.1f}% |")
    lines.append(f"| **total** | {totals['ours']:.3f} | 100% | {totals['HF']:.3f} | 100% |")
    body = "\n".join(lines)
    print("\n" + body)
    if not args.no_record:
        from ._record import record

        record(f"encoder_speed_profile_{name}_{seq}_{dname}", body)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compile and not args.warm_compile_cache:
        import tempfile

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="inductor-cold-")
    if args.profile:
        profile(args)
        return
    print(f"encoder_speed: {', '.join(args.configs)} × T {args.seq} × {', '.join(args.dtypes)}, "
          f"{args.rounds} rounds, {torch.get_num_threads()} threads", flush=True)
    load_start = os.getloadavg()[0]
    results = run(args)
    body = table(results) + "\n\n" + notes(args, (load_start, os.getloadavg()[0]))
    print("\n" + body)
    if not args.no_record:
        from ._record import record

        record("encoder_speed", body)


if __name__ == "__main__":
    main()
