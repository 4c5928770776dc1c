"""A Thurstonian agent with known utilities, for validating methods and planning query budgets.

Each outcome text gets a utility mean ~ N(0, 1) and a variance ~ LogNormal(log noise², 0.5²), both drawn from a
hash of (seed, text), so any outcome set works and the truth is recoverable with `utility(text)`; or the truth
is planted with `utilities={text: (mean, variance)}`. In a pairwise choice the agent picks label A with
probability Φ((μ_A − μ_B) / √(σ_A² + σ_B²) + position_bias). Rating a `subject` on a scale (the request's
`options` are the scale values each label stands for), it centres on mid + half-range · tanh(μ_subject) with
spread √σ² of the scale's half-range, and `position_bias` favours the first label shown. It gives a non-label
answer with probability `refusal_rate`. It behaves like any other backend: log-probs or samples, through the
store.

Offered money for certain against a money lottery (the risk-attitudes wording: "you get $40 for certain", "a 25%
chance that you get $100 and a 75% chance that you pay $50"), it values both by cumulative prospect theory with the
parameters planted in `cpt` (alpha, beta, lambda, gamma, delta; each 1 unless planted: an expected-value agent),
misvalues each lottery by a seeded N(0, (cpt_noise · stake)²), the stake being the largest |v(x)| among its
outcomes, and picks A with probability Φ((V_A − V_B) / (cpt_noise · stake of both) + position_bias). Other texts
are outcomes as above. The spec `synthetic:SEED,alpha=0.8,lambda=2` plants them (`parse_name`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import norm

from valuelab.errors import InputError, ModelSpecError
from valuelab.models.base import Backend, ChoiceRequest, ChoiceResult


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


OPEN_CHOICE_DRAWS = 4000
"""Draws behind the synthetic agent's choice probabilities among more than two options."""

CPT_PARAMETERS = ("alpha", "beta", "lambda", "gamma", "delta")
"""Cumulative prospect theory (Tversky & Kahneman 1992): value curvature for gains and losses, loss aversion,
probability weighting for gains and losses."""
CPT_NOISE = 0.02
"""The agent's noise in valuing money prospects, as a share of the largest stake's value."""
OTHER_OPTIONS = ("noise", "position_bias", "refusal_rate", "cpt_noise")
"""Other constructor options a spec may set: `synthetic:SEED,position_bias=0.3`."""

_OUTCOME = r"(you get \$([\d,]+)|you pay \$([\d,]+)|nothing happens)"
_SURE = re.compile(r"you (get|pay) \$([\d,]+) for certain")
_LOTTERY = re.compile(rf"a (\d+(?:\.\d+)?)% chance that {_OUTCOME} and a (\d+(?:\.\d+)?)% chance that {_OUTCOME}")


def _amount(get: str | None, pay: str | None) -> float:
    return float(get.replace(",", "")) if get else -float(pay.replace(",", "")) if pay else 0.0


def parse_prospect(text: str) -> tuple[tuple[float, float], ...] | None:
    """((amount, chance), ...) of a money prospect in the risk-attitudes wording; None for any other text."""
    text = text.strip()
    if sure := _SURE.fullmatch(text):
        amount = float(sure.group(2).replace(",", ""))
        return ((amount if sure.group(1) == "get" else -amount, 1.0),)
    if lottery := _LOTTERY.fullmatch(text):
        g = lottery.groups()
        return ((_amount(g[2], g[3]), float(g[0]) / 100), (_amount(g[6], g[7]), float(g[4]) / 100))
    return None


def _weight(p: float, g: float) -> float:
    return p**g / (p**g + (1 - p) ** g) ** (1 / g) if 0 < p < 1 else float(p >= 1)


def cpt_value(prospect: Sequence[tuple[float, float]], params: Mapping[str, float] | None = None) -> float:
    """The cumulative prospect theory value of ((amount, chance), ...) (Tversky & Kahneman 1992): v(x) = x^α for
    gains, −λ(−x)^β for losses; a gain's decision weight is w⁺ of the chance of it or more minus w⁺ of the chance
    of more, a loss's the same with w⁻ from the worst loss up, w(p) = p^γ / (p^γ + (1 − p)^γ)^(1/γ) (δ for
    losses). `params` holds alpha, beta, lambda, gamma, delta (each 1 when absent: the expected value)."""
    k = {name: 1.0 for name in CPT_PARAMETERS} | dict(params or {})

    def v(x: float) -> float:
        return x ** k["alpha"] if x >= 0 else -k["lambda"] * (-x) ** k["beta"]

    total = 0.0
    for outcomes, g in ((sorted((o for o in prospect if o[0] > 0), reverse=True), k["gamma"]),
                        (sorted(o for o in prospect if o[0] < 0), k["delta"])):
        reached = 0.0
        for x, p in outcomes:  # from the most extreme outcome toward zero
            total += (_weight(min(reached + p, 1.0), g) - _weight(reached, g)) * v(x)
            reached += p
    return total


def parse_name(name: str) -> tuple[int, dict]:
    """`SEED` or `SEED,key=value,...` after `synthetic:`: the seed, and planted options (the prospect-theory
    parameters alpha, beta, lambda, gamma, delta; also noise, position_bias, refusal_rate, cpt_noise)."""
    seed_text, *pairs = (name or "0").split(",")
    try:
        seed = int(seed_text or 0)
    except ValueError:
        raise ModelSpecError(f"synthetic:{name}: the part after 'synthetic:' is an integer seed, then optional "
                             ",key=value pairs") from None
    options: dict = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        key = key.strip()
        if key not in CPT_PARAMETERS and key not in OTHER_OPTIONS:
            raise ModelSpecError(f"synthetic:{name}: unknown option {key!r}; plant one of "
                                 f"{', '.join(CPT_PARAMETERS + OTHER_OPTIONS)}")
        try:
            number = float(value)
        except ValueError:
            raise ModelSpecError(f"synthetic:{name}: {key} needs a number, got {value!r}") from None
        if key in CPT_PARAMETERS:
            options.setdefault("cpt", {})[key] = number
        else:
            options[key] = number
    return seed, options


class SyntheticBackend(Backend):
    kind = "synthetic"

    def __init__(self, seed: int = 0, *, noise: float = 0.5, position_bias: float = 0.0,
                 refusal_rate: float = 0.0, utilities: dict[str, tuple[float, float]] | None = None,
                 cpt: Mapping[str, float] | None = None, cpt_noise: float = CPT_NOISE):
        if not 0.0 <= refusal_rate < 1.0:
            raise InputError(f"refusal_rate must be in [0, 1), got {refusal_rate}", field="refusal_rate")
        self.seed, self.noise, self.position_bias, self.refusal_rate = seed, noise, position_bias, refusal_rate
        self.truth = dict(utilities or {})
        unknown = sorted(set(cpt or {}) - set(CPT_PARAMETERS))
        if unknown:
            raise InputError(f"unknown prospect-theory parameter {', '.join(unknown)} (planted ones: "
                             f"{', '.join(CPT_PARAMETERS)})", field="cpt")
        self.cpt = {name: float((cpt or {}).get(name, 1.0)) for name in CPT_PARAMETERS}
        bad = [f"{k}={v}" for k, v in self.cpt.items() if not (v > 0 and math.isfinite(v))]
        if bad or not cpt_noise > 0:
            raise InputError(f"prospect-theory parameters and cpt_noise must be positive, got "
                             f"{', '.join(bad) or f'cpt_noise={cpt_noise}'}", field="cpt")
        self.cpt_noise = float(cpt_noise)

    def identity(self) -> dict[str, str]:
        params = f"noise={self.noise},bias={self.position_bias},refusal={self.refusal_rate}"
        if self.truth:
            params += ",truth=" + hashlib.sha256(json.dumps(sorted(self.truth.items())).encode()).hexdigest()[:12]
        if any(v != 1.0 for v in self.cpt.values()) or self.cpt_noise != CPT_NOISE:  # the default keeps old keys
            params += ",cpt=" + ",".join(f"{k}:{v:g}" for k, v in self.cpt.items()) + f",cpt_noise={self.cpt_noise:g}"
        return {"backend": self.kind, "model": f"synthetic:{self.seed}", "revision": params}

    def render(self, request: ChoiceRequest) -> str:
        return json.dumps(request.messages(), ensure_ascii=False)

    def utility(self, text: str) -> tuple[float, float]:
        """The agent's true (mean, variance) for an outcome text."""
        if text not in self.truth:
            rng = _rng("utility", self.seed, text)
            self.truth[text] = (float(rng.normal()), float(self.noise**2 * math.exp(0.5 * rng.normal())))
        return self.truth[text]

    def label_probs(self, request: ChoiceRequest) -> np.ndarray:
        """P(label | the agent answers with a label), in the request's label order."""
        if request.options is None or len(request.options) != len(request.labels):
            raise InputError("the synthetic agent needs what each label stands for (ChoiceRequest.options)")
        if request.subject is None and len(request.options) > 2:
            return self.open_choice_probs(request.options)
        if request.subject is None and (money := self.money_choice(request.options)) is not None:
            return np.array([money, 1.0 - money])
        if request.subject is None:
            (mu_a, var_a), (mu_b, var_b) = (self.utility(t) for t in request.options)
            p = float(norm.cdf((mu_a - mu_b) / math.sqrt(var_a + var_b) + self.position_bias))
            return np.array([p, 1.0 - p])
        values = np.array([float(v) for v in request.options])
        mu, var = self.utility(request.subject)
        mid, half = (values.max() + values.min()) / 2, (values.max() - values.min()) / 2
        logits = -((values - (mid + half * math.tanh(mu))) ** 2) / (2 * var * half**2)
        logits[0] += self.position_bias
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def money_choice(self, options: Sequence[str]) -> float | None:
        """P(A) between two money prospects (a sure amount or a two-outcome lottery each) valued by cumulative
        prospect theory with the planted parameters; None unless both texts are in the risk-attitudes wording."""
        prospects = [parse_prospect(t) for t in options]
        if any(p is None for p in prospects):
            return None
        values, stakes = [], []
        for text, prospect in zip(options, prospects, strict=True):
            value = cpt_value(prospect, self.cpt)
            stake = max(abs(cpt_value(((x, 1.0),), self.cpt)) for x, _ in prospect)
            if len(prospect) > 1:  # a lottery, misvalued by a seeded error; a sure amount is what it says
                value += self.cpt_noise * stake * float(_rng("cpt", self.seed, text).normal())
            values.append(value)
            stakes.append(stake)
        spread = self.cpt_noise * (max(stakes) or 1.0)
        return float(norm.cdf((values[0] - values[1]) / spread + self.position_bias))

    def open_choice_probs(self, options: Sequence[str], draws: int = OPEN_CHOICE_DRAWS) -> np.ndarray:
        """P(each option is the one the agent picks from the list): the chance its utility, drawn from the
        agent's Thurstonian N(mean, variance), is the highest (Thurstone's multinomial Case III choice),
        estimated from seeded draws so the same list always gets the same probabilities."""
        mean, var = np.array([self.utility(t) for t in options]).T
        draws_ = _rng("open-choice", self.seed, *options).normal(mean, np.sqrt(var), (draws, len(options)))
        return np.bincount(draws_.argmax(axis=1), minlength=len(options)) / draws

    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        mass = 1.0 - self.refusal_rate
        return [ChoiceResult.from_logprobs(np.log(np.clip(self.label_probs(r), 1e-12, 1) * mass), [],
                                           labels=r.labels) for r in requests]

    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        out = []
        for request in requests:
            probs = self.label_probs(request)
            rng = _rng("sample", self.seed, seed, request.prompt, request.options)
            refuse = rng.random(n) < self.refusal_rate
            picks = rng.choice(len(probs), size=n, p=probs)
            out.append(["I would rather not choose." if r else request.labels[k]
                        for r, k in zip(refuse, picks, strict=True)])
        return out
