"""Local transformers backend (GGUF files too): one forward pass per batch gives every label probability.

The recipe follows reference/tooling.md §2.1: render with the chat template, tokenize with
`add_special_tokens=False` (the template already carries any BOS), pad on the left, pass position ids so
padding does not shift positions, and take log-softmax in float32 at the first answer position.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from valuelab.errors import BackendError, ModelSpecError
from valuelab.models.base import Backend, ChoiceRequest, ChoiceResult
from valuelab.prompts import LABELS

TOP_K = 10
"""How many raw top tokens are kept with each answer, for the choice-mass diagnostics."""


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def label_token_ids(tokenizer, rendered_prompt: str, label: str) -> list[int]:
    """Token ids of the surface variants of `label` ("A", " A") as they would follow `rendered_prompt`.

    Each variant is appended to the real rendered prompt and kept only if it adds exactly one token that decodes
    back to the variant, so merges with the template's last characters are caught. Never
    `convert_tokens_to_ids(" A")`: on byte-level BPE vocabularies that silently returns the unknown token.
    """
    base = tokenizer(rendered_prompt, add_special_tokens=False).input_ids
    ids = []
    for variant in (label, " " + label):
        full = tokenizer(rendered_prompt + variant, add_special_tokens=False).input_ids
        if len(full) == len(base) + 1 and full[: len(base)] == base:
            token = full[-1]
            if tokenizer.decode([token]) == variant and token not in ids:
                ids.append(token)
    if not ids:
        raise BackendError(f"label {label!r} is not a single token after this model's chat template; "
                           "use sampling mode (--mode sample)")
    return ids


class HFBackend(Backend):
    """A causal LM from transformers, loaded from the hub cache, a folder, or a GGUF file."""

    kind = "hf"

    def __init__(self, model_id: str, *, gguf_file: str | None = None, device: str = "cpu",
                 dtype: str = "float32", batch_size: int = 16, revision: str | None = None,
                 name: str | None = None, model=None, tokenizer=None, enable_thinking: bool | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # valuelab draws its own progress bars
        self.model_id, self.gguf_file, self.device = model_id, gguf_file, device
        self.name = name or model_id + (f"#{gguf_file}" if gguf_file else "")
        self.batch_size = batch_size
        self.enable_thinking = enable_thinking
        if model is None or tokenizer is None:
            load = {"gguf_file": gguf_file} if gguf_file else {}
            try:
                tokenizer = AutoTokenizer.from_pretrained(model_id, **load)
                model = AutoModelForCausalLM.from_pretrained(model_id, dtype=getattr(torch, dtype), **load)
            except OSError as exc:
                raise ModelSpecError(f"cannot load transformers model {model_id!r}: {exc.args[0]}. Models are not "
                                     "downloaded at run time: give a local folder or a cached hub name") from None
        self.tokenizer, self.model = tokenizer, model.to(device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.revision = revision or self._revision()
        self._label_ids: dict[str, list[int]] = {}

    def _revision(self) -> str:
        if self.gguf_file:
            return "sha256:" + file_sha256(Path(self.model_id) / self.gguf_file)[:16]
        commit = getattr(self.model.config, "_commit_hash", None)
        if commit:
            return commit
        # A folder or an in-memory model: the config's content identifies the architecture; weights may differ,
        # so in-memory models should pass `revision=` explicitly.
        config = json.dumps(self.model.config.to_dict(), sort_keys=True, default=str)
        return "config:" + hashlib.sha256(config.encode()).hexdigest()[:16]

    def identity(self) -> dict[str, str]:
        return {"backend": self.kind, "model": self.name, "revision": self.revision}

    def render(self, request: ChoiceRequest) -> str:
        extra = {} if self.enable_thinking is None else {"enable_thinking": self.enable_thinking}
        return self.tokenizer.apply_chat_template(request.messages(), tokenize=False, add_generation_prompt=True,
                                                  **extra)

    def label_ids(self, rendered_prompt: str, labels: tuple[str, ...] = LABELS) -> list[list[int]]:
        """Token sets of each label, probed once per label on a real rendered prompt and reused after."""
        for label in labels:
            if label not in self._label_ids:
                self._label_ids[label] = label_token_ids(self.tokenizer, rendered_prompt, label)
        return [self._label_ids[label] for label in labels]

    def _batches(self, texts: Sequence[str]):
        """Index batches of similar length, so little compute is spent on padding."""
        lengths = [len(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False).input_ids]
        order = sorted(range(len(texts)), key=lengths.__getitem__)
        for start in range(0, len(order), self.batch_size):
            yield order[start: start + self.batch_size]

    def _encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        self.tokenizer.padding_side = "left"
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        mask = enc["attention_mask"]
        # Without explicit positions a left-padded row would start at position > 0 and get different logits.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": mask.to(self.device),
                "position_ids": positions.to(self.device)}

    @torch.inference_mode()
    def next_token_logprobs(self, texts: list[str]) -> torch.Tensor:
        """Float32 log-softmax over the vocabulary at the position after each (left-padded) text."""
        # Only the last position's logits are needed; the LM head over every position would cost ~40% more
        # FLOPs on a small-vocabulary-heavy model like SmolLM2.
        logits = self.model(**self._encode(texts), logits_to_keep=1).logits[:, -1, :]
        return torch.log_softmax(logits.float(), dim=-1).cpu()

    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        texts = [self.render(r) for r in requests]
        results: list[ChoiceResult | None] = [None] * len(texts)
        for batch in self._batches(texts):
            logp = self.next_token_logprobs([texts[i] for i in batch])
            top = logp.topk(TOP_K, dim=-1)
            for row, i in enumerate(batch):
                labels = requests[i].labels
                ids = self.label_ids(texts[i], labels)
                top_tokens = [(self.tokenizer.decode([int(t)]), float(v))
                              for v, t in zip(top.values[row], top.indices[row], strict=True)]
                logps = [float(torch.logsumexp(logp[row, label_ids], dim=0)) for label_ids in ids]
                results[i] = ChoiceResult.from_logprobs(logps, top_tokens, labels=labels)
        return results  # type: ignore[return-value]

    @torch.inference_mode()
    def sample(self, requests: Sequence[ChoiceRequest], n: int, temperature: float = 1.0,
               max_tokens: int = 16, seed: int = 0) -> list[list[str]]:
        texts = [self.render(r) for r in requests]
        out: list[list[str]] = [[] for _ in texts]
        generator_seed = seed
        for batch in self._batches(texts):
            enc = self._encode([texts[i] for i in batch])
            enc.pop("position_ids")  # generate() derives positions from the attention mask itself
            torch.manual_seed(generator_seed)
            generated = self.model.generate(
                **enc, do_sample=temperature > 0, temperature=max(temperature, 1e-5), top_p=1.0, top_k=0,
                max_new_tokens=max_tokens, num_return_sequences=n, pad_token_id=self.tokenizer.pad_token_id)
            new = generated[:, enc["input_ids"].shape[1]:]
            decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            for row, i in enumerate(batch):
                out[i] = decoded[row * n: (row + 1) * n]
            generator_seed += 1
        return out

    def flops_per_token(self) -> float:
        """2 × parameters: the forward-pass cost of one token, for compute-bound comparisons."""
        return 2.0 * sum(p.numel() for p in self.model.parameters())

    def close(self) -> None:
        self.model = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
