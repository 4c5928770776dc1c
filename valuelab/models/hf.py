"""Local transformers backend (GGUF files too): one forward pass per batch gives every label probability.

The recipe follows reference/tooling.md §2.1: render with the chat template, tokenize with
`add_special_tokens=False` (the template already carries any BOS), pad on the left, pass position ids so
padding does not shift positions, and take log-softmax in float32 at the first answer position.

Forced-choice prompts share a long head (system message, template start, instruction): about half the tokens
of a pairwise prompt on SmolLM2. With `prefix_cache=True` (the default) that shared token prefix runs once per
group of prompts and only the differing suffixes run, batched on its key/value cache (see `prefix_groups`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch

from valuelab.devices import torch_device
from valuelab.errors import BackendError, ModelSpecError
from valuelab.models.base import Backend, ChoiceRequest, ChoiceResult
from valuelab.models.steering import Steering, attach, read_steering
from valuelab.prompts import LABELS

TOP_K = 10
"""How many raw top tokens are kept with each answer, for the choice-mass diagnostics."""

PASS_OVERHEAD = 32
"""What one more forward pass costs, in tokens' worth of compute, when choosing how to group shared prefixes."""

MAX_THRESHOLDS = 32
"""At most this many grouping thresholds are tried, so grouping stays cheap for very long request lists."""


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def adapter_digest(path: str | Path) -> str:
    """Hash of a saved adapter's files: part of the revision, so answers of different adapters never mix."""
    digest = hashlib.sha256()
    for file in sorted(Path(path).glob("adapter_*")):
        digest.update(file.name.encode() + file_sha256(file).encode())
    return "sha256:" + digest.hexdigest()[:16]


def load_adapter(model, path: str):
    """The base model wrapped with the LoRA adapter saved at `path` (peft, the optional `finetune` extra)."""
    if not (Path(path) / "adapter_config.json").is_file():
        raise ModelSpecError(f"no adapter at {path!r}: expected a folder with adapter_config.json "
                             "(written by `valuelab control finetune`)")
    try:
        from peft import PeftModel
    except ImportError:
        raise ModelSpecError("loading an adapter needs peft: pip install 'valuelab[finetune]'") from None
    return PeftModel.from_pretrained(model, path)


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


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    return next((k for k in range(n) if a[k] != b[k]), n)


def prefix_groups(ids: Sequence[Sequence[int]], overhead: int = PASS_OVERHEAD) -> list[tuple[int, list[int]]]:
    """Groups of prompts (token id lists) that share a token prefix, each with the prefix length to run once.

    In sorted order prompts with long common prefixes sit side by side, and a run of neighbours shares the
    smallest overlap between neighbours in it. Cutting the sorted list wherever neighbours share fewer than T
    tokens gives the groups; T is the threshold that minimises the tokens run (each prefix once plus every
    suffix, plus `overhead` per extra pass). A prefix always leaves each prompt at least one token to run, as the
    answer is read after the last one. Prompts in a group with prefix 0 share nothing worth caching.
    """
    order = sorted(range(len(ids)), key=lambda i: list(ids[i]))
    overlaps = [common_prefix_length(ids[a], ids[b]) for a, b in zip(order, order[1:], strict=False)]
    candidates = sorted(set(overlaps))
    if len(candidates) > MAX_THRESHOLDS:
        candidates = [candidates[round(k * (len(candidates) - 1) / (MAX_THRESHOLDS - 1))]
                      for k in range(MAX_THRESHOLDS)]
    best: tuple[int, list[tuple[int, list[int]]]] | None = None
    for threshold in [0, *(v + 1 for v in candidates)]:
        groups, start = [], 0
        for end in range(1, len(order) + 1):
            if end == len(order) or overlaps[end - 1] < threshold:
                members = order[start:end]
                shared = min(overlaps[start: end - 1], default=0)
                shared = min(shared, min(len(ids[i]) for i in members) - 1) if len(members) > 1 else 0
                groups.append((max(shared, 0), members))
                start = end
        cost = sum(sum(len(ids[i]) for i in g) - (len(g) - 1) * p + (overhead if p else 0) for p, g in groups)
        if best is None or cost < best[0]:
            best = (cost, groups)
    return best[1] if best else []


def returned_cache(output) -> tuple[str, object]:
    """The keyword that passes a forward pass's key/value cache back in, and that cache (None if there is none).

    transformers 5.24 renamed `past_key_values` to `cache`, in model outputs and in `forward()` alike; there the
    old name still works but warns (a FutureWarning on every call, removal announced for 5.40), while releases
    before 5.24 know only `past_key_values`. The field the model filled names the keyword it takes, so no version
    is compared. `keys()` lists the real fields: `in` or indexing with the old name would warn on 5.24 and later.
    """
    fields = output.keys()
    for keyword in ("cache", "past_key_values"):
        if keyword in fields:
            return keyword, output[keyword]
    return "past_key_values", None


def plain_cache(cache) -> bool:
    """Whether a key/value cache is plain full attention in every layer: the only kind that can be shared
    by padded suffixes or cut back to a prefix (a sliding window would shift, a recurrent state be corrupted)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return isinstance(cache, DynamicCache) and all(type(layer) is DynamicLayer for layer in cache.layers)


class HFBackend(Backend):
    """A causal LM from transformers, loaded from the hub cache, a folder, or a GGUF file."""

    kind = "hf"

    def __init__(self, model_id: str, *, gguf_file: str | None = None, device: str = "cpu",
                 dtype: str = "float32", batch_size: int = 16, revision: str | None = None,
                 name: str | None = None, model=None, tokenizer=None, enable_thinking: bool | None = None,
                 adapter: str | None = None, prefix_cache: bool = True, steer: str | None = None,
                 steer_strength: float | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # valuelab draws its own progress bars
        torch_device(device)  # before the (slow) load: a missing GPU is a clear error, not a traceback
        self.model_id, self.gguf_file, self.device = model_id, gguf_file, device
        self.name = name or model_id + (f"#{gguf_file}" if gguf_file else "")
        self.batch_size = batch_size
        self.enable_thinking = enable_thinking
        self.prefix_cache = prefix_cache
        # Tokens fed to the model: `prompt_tokens` as the prompts are long, `computed_tokens` as run (a cached
        # prefix counts once per group, padding counts), `completion_tokens` as sampled.
        self.stats = {"prompt_tokens": 0, "computed_tokens": 0, "completion_tokens": 0}
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
        if adapter:  # `hf:BASE+adapter=PATH`: base revision plus the adapter's hash
            self.model = load_adapter(self.model, adapter).eval()
            self.name += "+adapter"
            self.revision += "+adapter:" + adapter_digest(adapter)
        self.steering, self._steer_hook = None, None
        if steer:  # `hf:BASE+steer=DIR`: a forward hook adds the steering vector; the revision names it
            self.steer(read_steering(steer, steer_strength), where=steer)
        self._label_ids: dict[str, list[int]] = {}
        self._cache_keyword = "past_key_values"  # set from the model's own output by `_prefix_cache`

    def steer(self, steering: Steering, where: str = "steering") -> None:
        """Add `steering`'s vector to its decoder layer from now on (one steering at a time)."""
        if self.steering is not None:
            raise ModelSpecError(f"{self.name} is already steered: load the base model to steer it another way")
        steering.check(self.model, self.name, where)
        self._steer_hook = attach(self.model, steering)
        self.steering = steering
        self.name += "+steer"
        self.revision += steering.tag()

    def steered_from(self, position: int):
        """A context in which steering (if any) acts at every position from `position` on, for scoring a reply
        in one pass as it would be steered token by token when generated."""
        return self._steer_hook.from_position(position) if self._steer_hook is not None else nullcontext()

    def unsteer(self) -> None:
        """Remove the steering hook: the model answers as before it was steered."""
        if self._steer_hook is not None:
            self._steer_hook.remove()
            self.name = self.name.removesuffix("+steer")
            self.revision = self.revision.removesuffix(self.steering.tag())
        self.steering, self._steer_hook = None, None

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

    def _batches(self, lengths: Sequence[int], indices: Sequence[int] | None = None) -> Iterator[list[int]]:
        """Index batches of similar length, so little compute is spent on padding."""
        order = sorted(range(len(lengths)) if indices is None else indices, key=lengths.__getitem__)
        for start in range(0, len(order), self.batch_size):
            yield order[start: start + self.batch_size]

    def _encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self._left_padded(self.tokenizer(texts, add_special_tokens=False).input_ids)

    def _left_padded(self, rows: Sequence[Sequence[int]], offset: int = 0) -> dict[str, torch.Tensor]:
        """Input ids, attention mask and position ids of left-padded rows that start at position `offset`."""
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, row in enumerate(rows):
            input_ids[k, width - len(row):] = torch.tensor(row, dtype=torch.long)
            mask[k, width - len(row):] = 1
        # Without explicit positions a left-padded row would start at position > 0 and get different logits.
        positions = offset + (mask.cumsum(-1) - 1).clamp(min=0)
        return {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device),
                "position_ids": positions.to(self.device)}

    @torch.inference_mode()
    def _last_logprobs(self, inputs: dict[str, torch.Tensor], past=None) -> torch.Tensor:
        """Float32 log-softmax over the vocabulary after the last position of each row (on `past` if given)."""
        # Only the last position's logits are needed; the LM head over every position would cost ~40% more
        # FLOPs on a small-vocabulary-heavy model like SmolLM2.
        cache = {} if past is None else {self._cache_keyword: past}
        logits = self.model(**inputs, **cache, use_cache=past is not None, logits_to_keep=1).logits[:, -1, :]
        self.stats["computed_tokens"] += inputs["input_ids"].numel()
        return torch.log_softmax(logits.float(), dim=-1).cpu()

    @torch.inference_mode()
    def _prefix_cache(self, prefix: list[int]):
        """The key/value cache of one shared prefix (batch 1), or None for caches that cannot be shared this way.

        Only plain full-attention layers qualify (`plain_cache`): the suffix batches put padding between prefix
        and suffix.
        """
        with self._steer_hook.paused() if self._steer_hook is not None else nullcontext():  # no answer position
            output = self.model(input_ids=torch.tensor([prefix], device=self.device), use_cache=True,
                                logits_to_keep=1)
        self.stats["computed_tokens"] += len(prefix)
        keyword, past = returned_cache(output)
        if not plain_cache(past):
            self.prefix_cache = False
            return None
        self._cache_keyword = keyword
        return past

    def _suffix_batches(self, ids: Sequence[Sequence[int]], group: list[int], shared: int,
                        past) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Each batch of the group's suffixes run on a copy of the prefix cache, expanded to the batch.

        Suffixes are left-padded, so the padding sits between prefix and suffix: it is masked out, real tokens
        keep positions `shared`, `shared + 1`, ... and every row's answer is read at the last column.
        """
        from transformers.cache_utils import DynamicCache

        lengths = [len(row) for row in ids]  # prefixes are equal, so this sorts suffixes by length
        for batch in self._batches(lengths, group):
            cache = DynamicCache([(layer.keys, layer.values) for layer in past.layers])
            cache.batch_repeat_interleave(len(batch))
            inputs = self._left_padded([ids[i][shared:] for i in batch], offset=shared)
            prefix_mask = torch.ones(len(batch), shared, dtype=torch.long, device=self.device)
            inputs["attention_mask"] = torch.cat([prefix_mask, inputs["attention_mask"]], dim=1)
            yield batch, self._last_logprobs(inputs, cache)

    def next_token_logprobs(self, ids: Sequence[Sequence[int]]) -> Iterator[tuple[list[int], torch.Tensor]]:
        """(indices, log-softmax rows) for all prompts, batch by batch; shared prefixes run once per group."""
        groups = prefix_groups(ids) if self.prefix_cache else [(0, list(range(len(ids))))]
        plain: list[int] = []
        for shared, group in groups:
            past = self._prefix_cache(list(ids[group[0]][:shared])) if shared and self.prefix_cache else None
            if past is None:
                plain += group
            else:
                yield from self._suffix_batches(ids, group, shared, past)
        lengths = [len(row) for row in ids]
        for batch in self._batches(lengths, plain):
            yield batch, self._last_logprobs(self._left_padded([ids[i] for i in batch]))

    def _choice_probs(self, requests: Sequence[ChoiceRequest]) -> list[ChoiceResult]:
        texts = [self.render(r) for r in requests]
        token_ids = self.tokenizer(texts, add_special_tokens=False).input_ids
        self.stats["prompt_tokens"] += sum(len(row) for row in token_ids)
        results: list[ChoiceResult | None] = [None] * len(texts)
        for batch, logp in self.next_token_logprobs(token_ids):
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
        token_ids = self.tokenizer([self.render(r) for r in requests], add_special_tokens=False).input_ids
        out: list[list[str]] = [[] for _ in token_ids]
        generator_seed = seed
        for batch in self._batches([len(row) for row in token_ids]):
            enc = self._left_padded([token_ids[i] for i in batch])
            enc.pop("position_ids")  # generate() derives positions from the attention mask itself
            torch.manual_seed(generator_seed)
            generated = self.model.generate(
                **enc, do_sample=temperature > 0, temperature=max(temperature, 1e-5), top_p=1.0, top_k=0,
                max_new_tokens=max_tokens, num_return_sequences=n, pad_token_id=self.tokenizer.pad_token_id)
            new = generated[:, enc["input_ids"].shape[1]:]
            decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            ends = torch.tensor([self.tokenizer.pad_token_id, self.tokenizer.eos_token_id], device=new.device)
            self.stats["prompt_tokens"] += n * int(enc["attention_mask"].sum())
            self.stats["completion_tokens"] += int((~torch.isin(new, ends)).sum())
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
