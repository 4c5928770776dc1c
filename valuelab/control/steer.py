"""Steering toward an assembly without training the model: a system prompt, or one vector added at one layer.

- `prompt`: a system prompt written from the assembly's targets (the training outcomes it valued most and
  least, and the categories it favoured), in our own words, or the user's own (`system=`). It is written to
  `STEER/system.txt`; every command takes it with `--system @STEER/system.txt` (or `--system @STEER`).
- `activation`: a vector added to one decoder layer's output at the answer position (`models.steering`).
  Every training pair is rendered in both orders with the assembly's template; since the majority's option is
  A in one order and B in the other, a vector that only favoured a label would gain nothing. Two vectors:
  - `fitted` (the default): the vector that maximises the log-probability of the majority's label, over the
    whole vocabulary, on the training prompts, by Adam from zero with the model frozen. This is bi-directional
    preference optimisation of a steering vector reduced to forced choices (Cao et al. 2024, "Personalized
    Steering of Large Language Models"), a single-vector intervention in the sense of ReFT (Wu et al. 2024).
    Fitting is cheap because only the answer position is steered: the prompts' other tokens run once into a
    key/value cache (`AnswerPosition`), and each step re-runs only the last token.
  - `mean-difference`: contrastive activation addition (Rimsky et al. 2024; Turner et al. 2023). Each prompt
    is followed once by the majority's label and once by the other; the vector is the mean decoder-layer
    output at that answer token over the preferred answers minus the mean over the rejected ones. Its
    strength is relative to the layer: the added vector's norm as a share of the mean activation norm there.
    On SmolLM2-135M these vectors move the answers little and unevenly (held-out agreement gained +0.15 on
    average over four planted assemblies, against +0.28 for fitted vectors; benchmarks/README.md), so they are
    the option, not the default.

  The layer and the number of steps (fitted) or the strength (mean difference) are chosen by cross-validation
  over the training outcomes: vectors made without a fold's outcomes are scored on the pairs involving them, by
  agreement with the majority, then the mean probability on its side, ties to the smaller setting; the
  unsteered model is always a candidate, and candidates that lose more than `COMPLIANCE_SLACK` of format
  compliance are refused. The chosen vector is then made again from every training pair. The folder loads as
  `smollm2+steer=STEER` (or `hf:BASE+steer=STEER`) in any command.

Both write `STEER/steer.json` with the method, its settings and the seconds it took to build.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from valuelab.control.finetune import _hf_backend, base_spec, target_template
from valuelab.control.targets import Targets, load_targets
from valuelab.errors import InputError
from valuelab.models import LOW_MASS
from valuelab.models.base import Backend, ChoiceRequest
from valuelab.models.hf import HFBackend, plain_cache, returned_cache
from valuelab.models.steering import SETTINGS_FILE, Steering, add_hook, decoder_layers
from valuelab.prompts import Template, get_template
from valuelab.stats import write_json

METHODS = ("prompt", "activation")
VECTORS = ("fitted", "mean-difference")
FIT_STEPS = (10, 20, 40)
"""Candidate numbers of Adam steps for a fitted vector (each a checkpoint of the same run; 0, the unsteered
model, is always a candidate)."""
FIT_RATE = 0.004
"""Adam's learning rate for a fitted vector, as a share of the layer's mean activation norm at the answer token
(about 0.5 in SmolLM2-135M's middle layers)."""
STRENGTHS = (0.0, 0.1, 0.2, 0.4)
"""Candidate strengths, relative: the added vector's norm as a share of the layer's mean activation norm at the
answer token (0: no steering, kept as a candidate). The raw mean difference is small beside the residual
stream (on SmolLM2-135M about 1.5 % of its norm in the middle layers), so the raw multiplier is large."""
LAYER_SHARES = (0.25, 0.4, 0.55)
"""Default layers to try, as shares of the depth: the middle of the stack (layers 8, 12, 16 of 30)."""
N_FOLDS = 3
"""Folds of the training outcomes for choosing the layer and strength: every training pair is scored once per
fold whose outcomes it involves, with vectors fitted on the pairs that involve none of them."""
COMPLIANCE_SLACK = 0.1
"""A candidate may lose at most this much format compliance (share of prompts with P(A)+P(B) ≥ LOW_MASS) on the
validation pairs against the unsteered model: steering that makes the model stop answering A or B is refused."""
ANSWER_BATCH = 64
"""Prompts per forward pass when scoring or fitting at the answer position: one token each, so wide batches
cost little memory and run faster on a CPU."""
SYSTEM_FILE = "system.txt"


@dataclass
class SteerResult:
    """Where the steering is, how to use it, what was chosen and what it cost."""

    directory: Path
    method: str
    spec: str | None
    system: str | None
    build_seconds: float
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)
    settings: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.selection

    def to_dict(self) -> dict:
        return {"directory": str(self.directory), "method": self.method, "spec": self.spec,
                "system": self.system, "build_seconds": self.build_seconds, **self.settings}


def _phrase(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def steering_prompt(targets: Targets, n: int = 3) -> str:
    """A system prompt that states the assembly's preferences over its training outcomes only (the held-out ones
    must stay unseen): the `n` it valued most and least, and its most and least favoured categories."""
    train = targets.utilities[targets.utilities["id"].isin(targets.train_ids)].sort_values("mean", ascending=False)
    n = max(1, min(n, len(train) // 2))
    best = [str(t).rstrip(".") for t in train["text"].head(n)]
    worst = [str(t).rstrip(".") for t in train["text"].tail(n)[::-1]]
    lines = ["When you are asked to choose between two outcomes, choose the way a citizens' assembly you "
             "represent would choose.",
             f"Among the outcomes it considered, the assembly valued these most: {'; '.join(best)}.",
             f"It valued these least: {'; '.join(worst)}."]
    categories = train.dropna(subset=["category"]) if "category" in train else train.iloc[:0]
    categories = categories[categories["category"].astype(str).str.strip() != ""]
    if categories["category"].nunique() >= 2:
        by = categories.groupby("category")["mean"].mean().sort_values(ascending=False)
        top, bottom = list(by.index[: max(1, len(by) // 2)]), list(by.index[max(1, len(by) // 2):])
        lines.append(f"In general it prefers outcomes about {_phrase([str(c) for c in top])} to outcomes about "
                     f"{_phrase([str(c) for c in bottom[::-1]])}.")
    lines.append("Prefer the option this assembly would prefer, also for outcomes not named here.")
    return " ".join(lines)


def both_orders(pairs: pd.DataFrame, template: Template) -> list[tuple[ChoiceRequest, bool]]:
    """Every pair's question in both orders, (a, b) at 2k and (b, a) at 2k + 1, each with whether its first
    option is the assembly majority's."""
    return [(ChoiceRequest(template.render(first, second), (first, second)), first_wins)
            for row in pairs.itertuples()
            for first, second, first_wins in ((row.text_a, row.text_b, row.majority == "a"),
                                              (row.text_b, row.text_a, row.majority == "b"))]


def contrast_texts(backend: HFBackend, pairs: pd.DataFrame, template: Template) -> tuple[list[str], list[str]]:
    """(preferred, rejected): both orders of every pair, each ending in the preferred or the rejected option's
    label; pair k is at 2k and 2k + 1. Pairs without a majority are the caller's to leave out."""
    preferred, rejected = [], []
    for request, first_wins in both_orders(pairs, template):
        rendered = backend.render(request)
        a, b = (backend.tokenizer.decode([ids[0]]) for ids in backend.label_ids(rendered))
        preferred.append(rendered + (a if first_wins else b))
        rejected.append(rendered + (b if first_wins else a))
    return preferred, rejected


@torch.inference_mode()
def answer_activations(backend: HFBackend, texts: list[str]) -> torch.Tensor:
    """Every decoder layer's output at the last token of each text: (texts, layers, hidden), float32."""
    layers = decoder_layers(backend.model)
    captured: list[torch.Tensor] = []
    batches = []

    def capture(_module, _inputs, output):
        captured.append((output[0] if isinstance(output, tuple) else output)[:, -1, :].float().cpu())

    handles = [layer.register_forward_hook(capture) for layer in layers]
    try:
        for start in range(0, len(texts), backend.batch_size):
            captured.clear()
            backend.model(**backend._encode(texts[start: start + backend.batch_size]), logits_to_keep=1)
            batches.append(torch.stack(captured, dim=1))
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat(batches)


@dataclass
class PairActivations:
    """Per decided training pair: the preferred-minus-rejected activation difference, averaged over both orders
    (pairs, layers, hidden), and the mean activation norm at the answer token per layer."""

    pairs: pd.DataFrame
    differences: torch.Tensor
    norms: torch.Tensor

    def vectors(self, mask: np.ndarray | None = None) -> torch.Tensor:
        """(layers, hidden): the mean difference over the pairs in `mask` (default all)."""
        rows = self.differences if mask is None else self.differences[torch.from_numpy(np.array(mask, dtype=bool))]
        return rows.mean(dim=0)


def pair_activations(backend: HFBackend, pairs: pd.DataFrame, template: Template) -> PairActivations:
    decided = pairs[pairs["majority"] != "tie"].reset_index(drop=True)
    if decided.empty:
        raise InputError("no training pair has a majority: nothing to compute steering vectors from",
                         field="target")
    preferred, rejected = contrast_texts(backend, decided, template)
    good, bad = answer_activations(backend, preferred), answer_activations(backend, rejected)
    difference = (good - bad).reshape(len(decided), 2, *good.shape[1:]).mean(dim=1)
    norms = torch.cat([good, bad]).norm(dim=-1).mean(dim=0)
    return PairActivations(decided, difference, norms)


class AnswerPosition:
    """The training pairs' answers under any vector added at the answer position, fast (and differentiable).

    Steering at the answer position (`models.steering`) changes nothing before the prompt's last token, and no
    earlier position attends to that one, so every prompt's tokens but the last run once into a key/value cache
    and each candidate vector re-runs only the last token on it: the same log-probabilities as asking the
    steered backend (to float rounding), at a few percent of the cost. Models whose cache cannot be cut back
    (sliding windows, recurrent state) are asked through the backend instead, and cannot fit vectors.
    """

    def __init__(self, backend: HFBackend, pairs: pd.DataFrame, template: Template):
        self.backend = backend
        ordered = both_orders(pairs, template)
        self.requests = [request for request, _ in ordered]
        texts = [backend.render(request) for request in self.requests]
        self.majority = torch.tensor([0 if first_wins else 1 for _, first_wins in ordered])
        """Per prompt, the label the assembly's majority chose (0: A, 1: B)."""
        self.label_ids = backend.label_ids(texts[0])
        self.batches: list[tuple[dict, str, object]] | None = []
        batch = max(backend.batch_size, ANSWER_BATCH)
        with torch.no_grad():  # not inference mode: fitting a vector runs autograd over these caches
            for start in range(0, len(texts), batch):
                inputs = backend._encode(texts[start: start + batch])
                output = backend.model(**{k: v[:, :-1] for k, v in inputs.items()}, use_cache=True,
                                       logits_to_keep=1)
                keyword, cache = returned_cache(output)
                if not plain_cache(cache):
                    self.batches = None
                    break
                self.batches.append((inputs, keyword, cache))

    def label_logps(self, layer: int | None = None, shift: torch.Tensor | None = None) -> torch.Tensor:
        """(prompts, 2): log P(label A) and log P(label B) over the whole vocabulary, with `shift` added to
        decoder layer `layer`'s output at the answer position (None: unsteered); differentiable in `shift`."""
        if self.batches is None:
            raise InputError(f"{self.backend.name}'s key/value cache cannot be cut back to a prompt's prefix, so "
                             "its steering vectors cannot be fitted: use mean-difference vectors", field="vector")
        hook = add_hook(self.backend.model, layer, shift) if shift is not None else None
        try:
            logps = []
            for inputs, keyword, cache in self.batches:
                output = self.backend.model(**{k: v[:, -1:] for k, v in inputs.items() if k != "attention_mask"},
                                            attention_mask=inputs["attention_mask"], **{keyword: cache},
                                            use_cache=True, logits_to_keep=1)
                cache.crop(-1)  # drop the last token's keys and values: the cache holds the prefix again
                for kept in cache.layers:  # and nothing of this pass's graph
                    kept.keys, kept.values = kept.keys.detach(), kept.values.detach()
                rows = torch.log_softmax(output.logits[:, -1, :].float(), dim=-1)
                logps.append(torch.stack([torch.logsumexp(rows[:, ids], dim=-1) for ids in self.label_ids], 1))
        finally:
            if hook is not None:
                hook.remove()
        return torch.cat(logps).cpu()

    @torch.no_grad()
    def probabilities(self, layer: int | None = None, shift: torch.Tensor | None = None,
                      ) -> tuple[np.ndarray, np.ndarray]:
        """(P(a ≻ b) per pair averaged over both orders, label mass per prompt) under `shift` at `layer`."""
        if self.batches is None:
            hook = add_hook(self.backend.model, layer, shift) if shift is not None else None
            try:
                results = self.backend.choice_probs(self.requests)
            finally:
                if hook is not None:
                    hook.remove()
            p_first, mass = np.array([r.p_a for r in results]), np.array([r.mass for r in results])
        else:
            both = self.label_logps(layer, shift)
            p_first, mass = torch.softmax(both, dim=-1)[:, 0].numpy(), both.exp().sum(dim=-1).numpy()
        return 0.5 * (p_first[0::2] + 1 - p_first[1::2]), mass

    def fit(self, layer: int, steps: Sequence[int], rate: float,
            prompts: np.ndarray | None = None) -> dict[int, torch.Tensor]:
        """A vector at `layer` fitted by Adam (learning rate `rate`, from zero) to the majority's label on the
        `prompts` (a mask over both orders of every pair; default all): minimises the mean −log P(majority's
        label) over the whole vocabulary, so a vector that stops the model answering A or B is penalised too.
        Returns the vector after each of `steps`."""
        vector = torch.zeros(self.backend.model.config.hidden_size, requires_grad=True)
        optimizer = torch.optim.Adam([vector], lr=rate)
        majority = self.majority
        chosen = torch.ones(len(majority), dtype=torch.bool) if prompts is None else torch.from_numpy(
            np.asarray(prompts, dtype=bool))
        trainable = [p for p in self.backend.model.parameters() if p.requires_grad]
        fitted = {}
        try:
            for p in trainable:  # only the vector learns
                p.requires_grad_(False)
            for step in range(1, max(steps, default=0) + 1):
                logps = self.label_logps(layer, vector)
                loss = -logps[chosen].gather(1, majority[chosen, None]).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if step in steps:
                    fitted[step] = vector.detach().clone()
        finally:
            for p in trainable:
                p.requires_grad_(True)
        return fitted


def validation_score(p_first: np.ndarray, share_a: np.ndarray) -> tuple[float, float]:
    """(agreement with the majority, mean probability on the majority's side) over decided pairs."""
    decided = share_a != 0.5
    majority_a = share_a[decided] > 0.5
    p = p_first[decided]
    return float(((p > 0.5) == majority_a).mean()), float(np.where(majority_a, p, 1 - p).mean())


def folds(train_ids: list[str], k: int, seed: int) -> list[list[str]]:
    """The training outcomes in `k` seeded folds of near-equal size (at least 3 outcomes stay out of each)."""
    k = max(1, min(k, len(train_ids) // 3))
    order = np.random.default_rng(seed).permutation(len(train_ids))
    return [[train_ids[i] for i in order[j::k]] for j in range(k)]


def validation_folds(pairs: pd.DataFrame, targets: Targets, n_folds: int, seed: int) -> list[np.ndarray]:
    """Per fold of the training outcomes, the mask of pairs that involve none of them (to fit on); the others
    are the fold's validation pairs."""
    masks = []
    for held in folds(list(targets.train_ids), n_folds, seed):
        inside = ~(pairs["id_a"].isin(held) | pairs["id_b"].isin(held)).to_numpy()
        if inside.any() and not inside.all():
            masks.append(inside)
    if not masks:
        raise InputError("too few training pairs to hold some out for choosing the layer and strength: ask more "
                         "pairs in the assembly (a larger budget)", field="budget")
    return masks


def validation_table(scores: dict[tuple, list[tuple[np.ndarray, np.ndarray, np.ndarray]]], setting: str,
                     norms: torch.Tensor) -> pd.DataFrame:
    """One row per (layer, `setting`) from its validation answers over the folds, (P(a ≻ b), label mass per
    prompt, the assembly's share for a) each; `eligible` marks candidates that keep the format compliance
    within COMPLIANCE_SLACK of the unsteered model's (setting 0)."""
    rows = []
    for (layer, value), parts in scores.items():
        p, mass, share = (np.concatenate([part[k] for part in parts]) for k in range(3))
        agreement, p_majority = validation_score(p, share)
        rows.append({"layer": layer, setting: value, "validation_agreement": agreement,
                     "validation_p_majority": p_majority, "validation_compliance": float((mass >= LOW_MASS).mean()),
                     "validation_mass": float(mass.mean()), "n_validation_pairs": len(p),
                     "activation_norm": float(norms[layer])})
    table = pd.DataFrame(rows)
    base = table.loc[table[setting] == 0, "validation_compliance"].iloc[0]
    table["eligible"] = table["validation_compliance"] >= base - COMPLIANCE_SLACK
    return table


def select_mean_difference(answers: AnswerPosition, activations: PairActivations, targets: Targets,
                           layers: list[int], strengths: list[float], seed: int,
                           n_folds: int = N_FOLDS) -> pd.DataFrame:
    """Mean-difference vectors: validation numbers for every layer × relative strength by cross-validation over
    the training outcomes (in each fold the vectors are computed without the fold's outcomes and scored on the
    pairs involving them)."""
    pairs, share = activations.pairs, activations.pairs["share_a"].to_numpy()
    unsteered = answers.probabilities()
    scores: dict[tuple, list] = {}
    for inside in validation_folds(pairs, targets, n_folds, seed):
        vectors = activations.vectors(inside)
        for layer in layers:
            for relative in strengths:
                scale = relative * float(activations.norms[layer]) / max(float(vectors[layer].norm()), 1e-12)
                p, mass = unsteered if relative == 0 else answers.probabilities(layer, scale * vectors[layer])
                scores.setdefault((layer, relative), []).append((p[~inside], mass[np.repeat(~inside, 2)],
                                                                 share[~inside]))
    return validation_table(scores, "relative_strength", activations.norms)


def select_fitted(backend: HFBackend, activations: PairActivations, targets: Targets, template: Template,
                  layers: list[int], steps: list[int], seed: int, n_folds: int = N_FOLDS) -> pd.DataFrame:
    """Fitted vectors: validation numbers for every layer × number of Adam steps (0: unsteered) by
    cross-validation over the training outcomes (in each fold the vector is fitted without the fold's outcomes
    and scored on the pairs involving them)."""
    pairs = activations.pairs
    scores: dict[tuple, list] = {}
    for inside in validation_folds(pairs, targets, n_folds, seed):
        fitting = AnswerPosition(backend, pairs[inside], template)
        validation = AnswerPosition(backend, pairs[~inside], template)
        share = pairs.loc[~inside, "share_a"].to_numpy()
        unsteered = (*validation.probabilities(), share)
        for layer in layers:
            scores.setdefault((layer, 0), []).append(unsteered)
            fitted = fitting.fit(layer, [k for k in steps if k], FIT_RATE * float(activations.norms[layer]))
            for k, vector in fitted.items():
                scores.setdefault((layer, k), []).append((*validation.probabilities(layer, vector), share))
    return validation_table(scores, "steps", activations.norms)


def default_layers(depth: int) -> list[int]:
    """The layers at `LAYER_SHARES` of the depth."""
    return sorted({min(depth - 1, int(round(share * depth))) for share in LAYER_SHARES})


def steer(model: str | Backend | None, target: str | Path | Targets, *, method: str = "activation",
          out: str | Path, system: str | None = None, vector: str = "fitted", layers: list[int] | None = None,
          strengths: list[float] | None = None, steps: list[int] | None = None,
          template: str | Template | None = None, seed: int = 0, device: str | None = None) -> SteerResult:
    """Build a steering folder `out` toward the target's training pairs (see the module docstring).

    `method="prompt"` writes a system prompt (the user's `system`, else one derived from the targets) and needs
    no model. `method="activation"` needs a transformers model (a spec or an HFBackend; hooks put on a given
    backend are removed before returning). `vector="fitted"` tries every `layers` × `steps` (defaults:
    `default_layers`, `FIT_STEPS`), `vector="mean-difference"` every `layers` × `strengths` (`STRENGTHS`), by
    cross-validation over the training outcomes (`N_FOLDS` folds).
    """
    if method not in METHODS:
        raise InputError(f"unknown steering method {method!r}; choose one of {', '.join(METHODS)}", field="method")
    if vector not in VECTORS:
        raise InputError(f"unknown steering vector {vector!r}; choose one of {', '.join(VECTORS)}", field="vector")
    started = time.perf_counter()
    targets = target if isinstance(target, Targets) else load_targets(target)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if method == "prompt":
        text = system.strip() if system else steering_prompt(targets)
        if not text:
            raise InputError("the system prompt is empty", field="system")
        (out / SYSTEM_FILE).write_text(text + "\n", encoding="utf-8")
        seconds = time.perf_counter() - started
        settings = {"method": "prompt", "source": "user" if system else "targets", "system": text,
                    "build_seconds": round(seconds, 3)}
        write_json(out / SETTINGS_FILE, settings)
        return SteerResult(out, method, None, text, seconds, settings=settings)

    if model is None:
        raise InputError("activation steering needs a model (smollm2, hf:ORG/NAME)", field="model")
    backend, _ = _hf_backend(model, device)
    if getattr(backend, "steering", None) is not None:
        raise InputError(f"{backend.name} is already steered: build steering vectors on its base model",
                         field="model")
    template = template or target_template(target)
    template = template if isinstance(template, Template) else get_template(template)
    depth = backend.model.config.num_hidden_layers
    layers = layers or default_layers(depth)
    bad = [k for k in layers if not 0 <= k < depth]
    if bad:
        raise InputError(f"layer {bad[0]} is outside the model's {depth} layers (0 to {depth - 1})", field="layers")
    activations = pair_activations(backend, targets.train, template)
    answers = AnswerPosition(backend, activations.pairs, template)
    if vector == "fitted":
        tried = sorted({0, *(steps if steps is not None else FIT_STEPS)})  # 0: the unsteered model
        setting = "steps"
        selection = select_fitted(backend, activations, targets, template, layers, tried, seed)
    else:
        tried = sorted({0.0, *(strengths if strengths is not None else STRENGTHS)})
        setting = "relative_strength"
        selection = select_mean_difference(answers, activations, targets, layers, tried, seed)
    ranked = selection[selection["eligible"]].sort_values(
        ["validation_agreement", "validation_p_majority", setting], ascending=[False, False, True])
    best = ranked.iloc[0]
    layer = int(best["layer"])
    chosen = int(best[setting]) if vector == "fitted" else float(best[setting])
    vectors = activations.vectors()
    if vector == "fitted":  # refit on every training pair; stored as a unit vector, its norm the strength
        fitted = answers.fit(layer, [chosen], FIT_RATE * float(activations.norms[layer])).get(chosen)
        vectors = torch.zeros_like(vectors)
        strength = 0.0 if fitted is None else float(fitted.norm())
        if strength > 0:
            vectors[layer] = fitted / strength
    else:
        strength = float(chosen) * float(activations.norms[layer]) / max(float(vectors[layer].norm()), 1e-12)
    seconds = time.perf_counter() - started
    unsteered = selection.loc[selection[setting] == 0, "validation_agreement"].iloc[0]
    settings = {"vector": vector, "template": template.name, "template_text": template.text, "seed": seed,
                "layers_tried": layers, f"{setting}_tried": tried, setting: chosen,
                "validation_agreement": float(best["validation_agreement"]),
                "validation_agreement_unsteered": float(unsteered),
                "n_training_pairs": len(activations.pairs), "build_seconds": round(seconds, 3)}
    if vector == "fitted":
        settings["learning_rate"] = FIT_RATE * float(activations.norms[layer])
    steering = Steering(vectors, layer, strength, backend.identity(), settings)
    steering.write(out)
    selection.to_csv(out / "selection.csv", index=False, float_format="%.6g")
    return SteerResult(out, method, f"{base_spec(backend)}+steer={out}", None, seconds, selection,
                       {**settings, "layer": steering.layer, "strength": steering.strength,
                        "hash": steering.digest})
