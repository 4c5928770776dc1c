"""LoRA fine-tuning of an `hf:` model toward an assembly's preferences, in a small seeded torch loop.

Every training pair is shown in both orders with the assembly's template and no system prompt; the quantities
trained are the full-vocabulary log-probabilities of the labels "A" and "B" at the answer position (all
surface variants combined, exactly what the hf backend scores). Objectives:

- `sft`: cross-entropy on the majority's label (the paper's supervised baseline, Mazeika et al. 2025 §7);
- `dpo`: Direct Preference Optimization (Rafailov et al. 2023) with chosen = the majority's label and
  rejected = the other at the same prompt; the frozen reference is the same model with the adapter disabled;
- `match`: cross-entropy between the model's P(A) renormalised over the two labels and the vote share, the
  "match the distribution" reading of the paper (reference/paper-utility-engineering.md §3).

Pairs the assembly split evenly are left out of `sft` and `dpo` (no majority) and kept for `match`. A plain
AdamW loop is used instead of transformers' Trainer or TRL: a few steps on CPU need none of their machinery.
"""

from __future__ import annotations

import copy
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from valuelab.control.targets import Targets, load_targets
from valuelab.errors import InputError, ModelSpecError
from valuelab.models import load_model
from valuelab.models.base import Backend, ChoiceRequest
from valuelab.models.hf import HFBackend, adapter_digest
from valuelab.prompts import DEFAULT_TEMPLATE, Template, get_template
from valuelab.stats import write_json

OBJECTIVES = ("sft", "dpo", "match")
DEFAULT_LR = 1e-2
"""What moved SmolLM2-135M in 12 steps for all three objectives (tests/test_control_finetune.py)."""
DPO_BETA = 0.1


@dataclass
class Examples:
    """Rendered prompts (both orders of every training pair) and each one's target P(A)."""

    texts: list[str]
    target_a: torch.Tensor

    def __len__(self) -> int:
        return len(self.texts)


def training_examples(backend: HFBackend, pairs: pd.DataFrame, template: str | Template) -> Examples:
    t = template if isinstance(template, Template) else get_template(template)
    texts, targets = [], []
    for row in pairs.itertuples():
        orders = ((row.text_a, row.text_b, row.share_a), (row.text_b, row.text_a, 1 - row.share_a))
        for first, second, share in orders:
            texts.append(backend.render(ChoiceRequest(t.render(first, second), (first, second))))
            targets.append(float(share))
    return Examples(texts, torch.tensor(targets, dtype=torch.float32))


def label_logps(backend: HFBackend, model, texts: list[str]) -> torch.Tensor:
    """(n, 2) full-vocabulary log-probabilities of "A" and "B" at the answer position, differentiable."""
    ids = backend.label_ids(texts[0])
    logits = model(**backend._encode(texts), logits_to_keep=1).logits[:, -1, :].float()
    logp = torch.log_softmax(logits, dim=-1)
    return torch.stack([torch.logsumexp(logp[:, variants], dim=-1) for variants in ids], dim=-1).cpu()


def objective_loss(objective: str, logps: torch.Tensor, target_a: torch.Tensor,
                   reference: torch.Tensor | None = None, beta: float = DPO_BETA) -> torch.Tensor:
    """The loss of one batch; rows without a majority count only for `match`."""
    if objective == "match":
        renormalised = torch.log_softmax(logps, dim=-1)
        return -(target_a * renormalised[:, 0] + (1 - target_a) * renormalised[:, 1]).mean()
    decided = target_a != 0.5
    if not decided.any():
        return logps.sum() * 0.0
    chosen = (target_a[decided] < 0.5).long()  # 0: A is the majority's label, 1: B
    rows = torch.arange(int(decided.sum()))
    picked, other = logps[decided][rows, chosen], logps[decided][rows, 1 - chosen]
    if objective == "sft":
        return -picked.mean()
    ref_picked, ref_other = reference[decided][rows, chosen], reference[decided][rows, 1 - chosen]
    margin = beta * ((picked - ref_picked) - (other - ref_other))
    return -torch.nn.functional.logsigmoid(margin).mean()


@dataclass
class FinetuneResult:
    """Where the adapter is, how to load it, the loss curve and the cost; `backend` is the tuned model."""

    adapter: Path
    spec: str
    objective: str
    steps: int
    lr: float
    seed: int
    losses: list[float]
    step_seconds: list[float]
    n_examples: int
    peak_memory_mb: float
    backend: HFBackend | None = field(default=None, repr=False)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"step": range(1, len(self.losses) + 1), "loss": self.losses,
                             "seconds": self.step_seconds})

    def to_dict(self) -> dict:
        return {"adapter": str(self.adapter), "spec": self.spec, "objective": self.objective,
                "steps": self.steps, "lr": self.lr, "seed": self.seed, "n_examples": self.n_examples,
                "first_loss": self.losses[0],
                "last_loss": self.losses[-1], "seconds": float(sum(self.step_seconds)),
                "seconds_per_step": float(np.mean(self.step_seconds)), "peak_memory_mb": self.peak_memory_mb}


def base_spec(backend: HFBackend) -> str:
    """The spec that loads `backend` again (the embedded model or an hf: folder or hub name)."""
    if backend.name.startswith("smollm2:"):
        return "smollm2"
    return "hf:" + backend.model_id + (f"/{backend.gguf_file}" if backend.gguf_file else "")


def _hf_backend(model: str | Backend, device: str | None = None) -> tuple[HFBackend, bool]:
    """The backend to train and whether it is a private copy (a spec loads a fresh model, on `device`; a given
    backend is deep-copied so the caller's model is left untouched)."""
    backend = load_model(model, device=device) if isinstance(model, str) else model
    if not isinstance(backend, HFBackend):
        name = model if isinstance(model, str) else backend.identity()["model"]
        raise ModelSpecError(f"fine-tuning needs a transformers model (hf:ORG/NAME, hf:/path or smollm2), "
                             f"not {name!r}")
    if "+adapter" in backend.name:
        raise ModelSpecError(f"{backend.name!r} already carries an adapter: fine-tune its base model instead")
    return backend, isinstance(model, str)


def peak_memory_mb(device: str) -> float:
    """Peak GPU memory allocated on CUDA; on CPU the process's peak resident set (a high-water mark)."""
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def finetune(model: str | Backend, target: str | Path | Targets, *, objective: str = "sft",
             out: str | Path, steps: int = 30, lr: float = DEFAULT_LR, seed: int = 0, batch_size: int = 8,
             rank: int = 8, beta: float = DPO_BETA, template: str | Template | None = None,
             target_modules: list[str] | None = None, layers: int | None = None,
             device: str | None = None) -> FinetuneResult:
    """Train a LoRA adapter on the target's training pairs and save it to `out`.

    `model` is a spec or an HFBackend; `target` an assembly folder or its `Targets`. `layers` adapts only the
    top that many transformer layers (default all): backpropagation then stops there, which roughly halves a
    CPU step. `target_modules` defaults to peft's choice for the architecture. The adapter loads later with
    `hf:BASE+adapter=OUT` (or `smollm2+adapter=OUT`), which `FinetuneResult.spec` spells out. `device`
    (cpu, cuda) places a model loaded from a spec.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}",
                         field="objective")
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}", field="steps")
    base, fresh = _hf_backend(model, device)
    from peft import LoraConfig, get_peft_model

    targets = target if isinstance(target, Targets) else load_targets(target)
    template = template or target_template(target)
    examples = training_examples(base, targets.train, template)
    usable = len(examples) if objective == "match" else int((examples.target_a != 0.5).sum())
    if usable == 0:
        raise InputError("no training pair has a majority: nothing to train on with " + objective,
                         field="objective")

    torch.manual_seed(seed)
    network = base.model if fresh else copy.deepcopy(base.model)
    depth = network.config.num_hidden_layers
    top = None if layers is None else list(range(max(depth - layers, 0), depth))
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=target_modules,
                        layers_to_transform=top, task_type="CAUSAL_LM")
    tuned = get_peft_model(network, config)
    reference = None
    if objective == "dpo":  # the frozen reference, scored once: the base model is the adapter switched off
        with torch.no_grad(), tuned.disable_adapter():
            reference = torch.cat([label_logps(base, tuned, examples.texts[i: i + base.batch_size])
                                   for i in range(0, len(examples), base.batch_size)])
    optimiser = torch.optim.AdamW([p for p in tuned.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    losses, seconds = [], []
    for _ in range(steps):
        start = time.perf_counter()
        batch = rng.choice(len(examples), min(batch_size, len(examples)), replace=False)
        logps = label_logps(base, tuned, [examples.texts[i] for i in batch])
        loss = objective_loss(objective, logps, examples.target_a[batch],
                              None if reference is None else reference[batch], beta)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
        seconds.append(time.perf_counter() - start)

    out = Path(out)
    tuned.eval().save_pretrained(out)
    digest = adapter_digest(out)
    backend = HFBackend(base.model_id, model=tuned, tokenizer=base.tokenizer, device=base.device,
                        batch_size=base.batch_size, revision=f"{base.revision}+adapter:{digest}",
                        name=base.name + "+adapter", enable_thinking=base.enable_thinking)
    result = FinetuneResult(out, f"{base_spec(base)}+adapter={out}", objective, steps, lr, seed, losses,
                            seconds, len(examples), peak_memory_mb(base.device), backend)
    write_json(out / "finetune.json", {**result.to_dict(), "base": base.identity(), "losses": losses})
    return result


def target_template(target: str | Path | Targets) -> Template:
    """The template the assembly was asked with, from its manifest when there is one."""
    manifest = Path(target) / "manifest.json" if not isinstance(target, Targets) else None
    if manifest is not None and manifest.is_file():
        info = json.loads(manifest.read_text(encoding="utf-8")).get("assembly", {})
        if "template_text" in info:
            return Template(info["template"], info["template_text"])
    return get_template(DEFAULT_TEMPLATE)
