"""Steering toward an assembly without training: a system prompt, or activation vectors added at one layer.

- `prompt`: a system prompt written from the assembly's targets (the training outcomes it valued most and
  least, and the categories it favoured), in our own words, or the user's own (`system=`). It is written to
  `STEER/system.txt`; every command takes it with `--system @STEER/system.txt` (or `--system @STEER`).
- `activation`: contrastive activation addition (Rimsky et al. 2024; Turner et al. 2023). Every training pair
  is rendered in both orders with the assembly's template, followed once by the label of the option the
  assembly's majority preferred and once by the other label; the steering vector of a layer is the mean
  decoder-layer output at that answer token over the preferred answers minus the mean over the rejected ones.
  Since the preferred option is A in one order and B in the other, the label itself cancels out. The strength
  is relative to the layer: the added vector's norm as a share of the mean activation norm there. Layer and
  strength are chosen by cross-validation over the training outcomes (vectors computed without a fold; agreement
  with the majority on pairs involving them, then the mean probability on its side, ties to the smaller
  strength; candidates that lose more than `COMPLIANCE_SLACK` of format compliance are refused), then the
  vectors are recomputed on every training pair. The folder loads as `smollm2+steer=STEER` (or
  `hf:BASE+steer=STEER`) in any command.

Both write `STEER/steer.json` with the method, its settings and the seconds it took to build.
"""

from __future__ import annotations

import time
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
from valuelab.models.hf import HFBackend
from valuelab.models.steering import SETTINGS_FILE, Steering, add_hook, decoder_layers
from valuelab.prompts import Template, get_template
from valuelab.stats import write_json

METHODS = ("prompt", "activation")
STRENGTHS = (0.0, 0.1, 0.2, 0.4)
"""Candidate strengths, relative: the added vector's norm as a share of the layer's mean activation norm at the
answer token (0: no steering, kept as a candidate). The raw mean difference is small beside the residual
stream (on SmolLM2-135M about 1.5 % of its norm in the middle layers), so the raw multiplier is large."""
LAYER_SHARES = (0.25, 0.35, 0.45)
"""Default layers to try, as shares of the depth: the lower middle of the stack (layers 8, 10, 14 of 30)."""
N_FOLDS = 3
"""Folds of the training outcomes for choosing the layer and strength: every training pair is scored once per
fold whose outcomes it involves, with vectors fitted on the pairs that involve none of them."""
COMPLIANCE_SLACK = 0.1
"""A candidate may lose at most this much format compliance (share of prompts with P(A)+P(B) ≥ LOW_MASS) on the
validation pairs against the unsteered model: steering that makes the model stop answering A or B is refused."""
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


def contrast_texts(backend: HFBackend, pairs: pd.DataFrame, template: Template) -> tuple[list[str], list[str]]:
    """(preferred, rejected): both orders of every pair, each ending in the preferred or the rejected option's
    label; pair k is at 2k and 2k + 1. Pairs without a majority are the caller's to leave out."""
    preferred, rejected = [], []
    for row in pairs.itertuples():
        for first, second, first_wins in ((row.text_a, row.text_b, row.majority == "a"),
                                          (row.text_b, row.text_a, row.majority == "b")):
            rendered = backend.render(ChoiceRequest(template.render(first, second), (first, second)))
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


def steering_vectors(backend: HFBackend, pairs: pd.DataFrame, template: Template) -> torch.Tensor:
    """(layers, hidden): mean activation with the preferred answer minus with the rejected one."""
    return pair_activations(backend, pairs, template).vectors()


def side_probabilities(backend: Backend, pairs: pd.DataFrame,
                       template: Template) -> tuple[np.ndarray, np.ndarray]:
    """The backend's order-debiased P(a ≻ b) on each pair and the label mass of every prompt (asked directly,
    not through the store)."""
    requests = [r for row in pairs.itertuples()
                for r in (ChoiceRequest(template.render(row.text_a, row.text_b), (row.text_a, row.text_b)),
                          ChoiceRequest(template.render(row.text_b, row.text_a), (row.text_b, row.text_a)))]
    results = backend.choice_probs(requests)
    p = np.array([0.5 * (results[2 * k].p_a + 1 - results[2 * k + 1].p_a) for k in range(len(pairs))])
    return p, np.array([r.mass for r in results])


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


def select(backend: HFBackend, activations: PairActivations, targets: Targets, template: Template,
           layers: list[int], strengths: list[float], seed: int, n_folds: int = N_FOLDS) -> pd.DataFrame:
    """Validation numbers for every layer × relative strength by cross-validation over the training outcomes:
    in each fold the vectors are fitted without the fold's outcomes and scored on the pairs involving them;
    `eligible` marks candidates that keep the format compliance (COMPLIANCE_SLACK)."""
    pairs = activations.pairs
    scores: dict[tuple[int, float], list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for held in folds(list(targets.train_ids), n_folds, seed):
        inside = ~(pairs["id_a"].isin(held) | pairs["id_b"].isin(held)).to_numpy()
        valid = pairs[~inside]
        if not inside.any() or valid.empty:
            continue
        vectors = activations.vectors(inside)
        share = valid["share_a"].to_numpy()
        unsteered = side_probabilities(backend, valid, template)
        for layer in layers:
            for relative in strengths:
                raw = relative * float(activations.norms[layer]) / max(float(vectors[layer].norm()), 1e-12)
                if relative == 0:
                    answers = unsteered
                else:
                    handle = add_hook(backend.model, layer, vectors[layer], raw)
                    try:
                        answers = side_probabilities(backend, valid, template)
                    finally:
                        handle.remove()
                scores.setdefault((layer, relative), []).append((answers[0], answers[1], share))
    if not scores:
        raise InputError("too few training pairs to hold some out for choosing the layer and strength: ask more "
                         "pairs in the assembly (a larger budget)", field="budget")
    rows = []
    for (layer, relative), parts in scores.items():
        p, mass, share = (np.concatenate([part[k] for part in parts]) for k in range(3))
        agreement, p_majority = validation_score(p, share)
        rows.append({"layer": layer, "relative_strength": relative, "validation_agreement": agreement,
                     "validation_p_majority": p_majority, "validation_compliance": float((mass >= LOW_MASS).mean()),
                     "validation_mass": float(mass.mean()), "n_validation_pairs": len(p),
                     "activation_norm": float(activations.norms[layer])})
    table = pd.DataFrame(rows)
    base = table.loc[table["relative_strength"] == 0, "validation_compliance"].iloc[0]
    table["eligible"] = table["validation_compliance"] >= base - COMPLIANCE_SLACK
    return table


def default_layers(depth: int) -> list[int]:
    """The layers at `LAYER_SHARES` of the depth, where steering worked on SmolLM2 (see the module docstring)."""
    return sorted({min(depth - 1, int(round(share * depth))) for share in LAYER_SHARES})


def steer(model: str | Backend | None, target: str | Path | Targets, *, method: str = "activation",
          out: str | Path, system: str | None = None, layers: list[int] | None = None,
          strengths: list[float] | None = None, template: str | Template | None = None, seed: int = 0,
          device: str | None = None) -> SteerResult:
    """Build a steering folder `out` toward the target's training pairs (see the module docstring).

    `method="prompt"` writes a system prompt (the user's `system`, else one derived from the targets) and needs
    no model. `method="activation"` needs a transformers model (a spec or an HFBackend; hooks put on a given
    backend are removed before returning) and tries every `layers` × `strengths` (defaults: `default_layers`,
    `STRENGTHS`) by cross-validation over the training outcomes (`N_FOLDS` folds).
    """
    if method not in METHODS:
        raise InputError(f"unknown steering method {method!r}; choose one of {', '.join(METHODS)}", field="method")
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
    strengths = list(strengths if strengths is not None else STRENGTHS)
    if 0.0 not in strengths:
        strengths = [0.0, *strengths]  # the unsteered model is always a candidate
    activations = pair_activations(backend, targets.train, template)
    selection = select(backend, activations, targets, template, layers, strengths, seed)
    ranked = selection[selection["eligible"]].sort_values(
        ["validation_agreement", "validation_p_majority", "relative_strength"], ascending=[False, False, True])
    best = ranked.iloc[0]
    layer, relative = int(best["layer"]), float(best["relative_strength"])
    vectors = activations.vectors()
    strength = relative * float(activations.norms[layer]) / max(float(vectors[layer].norm()), 1e-12)
    seconds = time.perf_counter() - started
    unsteered = selection.loc[selection["relative_strength"] == 0, "validation_agreement"].iloc[0]
    settings = {"template": template.name, "template_text": template.text, "seed": seed,
                "layers_tried": layers, "relative_strengths_tried": strengths, "relative_strength": relative,
                "validation_agreement": float(best["validation_agreement"]),
                "validation_agreement_unsteered": float(unsteered),
                "n_training_pairs": len(activations.pairs), "build_seconds": round(seconds, 3)}
    steering = Steering(vectors, layer, strength, backend.identity(), settings)
    steering.write(out)
    selection.to_csv(out / "selection.csv", index=False, float_format="%.6g")
    return SteerResult(out, method, f"{base_spec(backend)}+steer={out}", None, seconds, selection,
                       {**settings, "layer": steering.layer, "strength": steering.strength,
                        "hash": steering.digest})
