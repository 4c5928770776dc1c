"""Activation steering of a transformers model: add strength · vector to one decoder layer's output.

A steering folder (written by `valuelab control steer --method activation`) holds `vectors.safetensors`, one
vector per decoder layer (tensor "vectors", shape layers × hidden size; a fitted vector is a unit vector in its
own layer's row, the others zero, and its norm is the strength), and `steer.json` with the model it was
computed on, its hidden size and layer count, the chosen layer and strength, and the vectors' hash. Loading it
(`hf:BASE+steer=DIR`, `smollm2+steer=DIR`) registers a forward hook on that decoder layer which adds
strength · vector to the hidden state it returns at the answer position: the last position of each forward
pass, that is the prompt's last token and every generated token after it (rows are left-padded, so the last
column is every row's last real token). This is where contrastive activation addition steers (Rimsky et al.
2024, "Steering Llama 2 via Contrastive Activation Addition", adds the vector at every position after the
user's prompt); the prompt's own tokens, the options among them, are read unchanged. A forward pass over a
shared prompt prefix (the backend's prefix cache) is not an answer position, so the backend pauses the hook
for it. Removing the hook leaves the model as it was. The backend's revision names the hash, layer and
strength, so steered answers never mix with others in the store. The vector is a difference of mean
residual-stream activations (Rimsky et al. 2024; Turner et al. 2023) or fitted to the training answers
(`valuelab.control.steer`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from valuelab.errors import InputError

VECTORS_FILE, SETTINGS_FILE = "vectors.safetensors", "steer.json"


def decoder_layers(model) -> torch.nn.ModuleList:
    """The model's stack of decoder layers (through a peft wrapper too): the ModuleList as long as the config's
    layer count."""
    depth = model.config.num_hidden_layers
    for _, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == depth:
            return module
    raise InputError(f"cannot find the {depth} decoder layers of {type(model).__name__} to steer")


def model_shape(model) -> dict[str, int]:
    config = model.config
    return {"hidden_size": int(config.hidden_size), "num_layers": int(config.num_hidden_layers)}


def vectors_digest(vectors: torch.Tensor, layer: int) -> str:
    """Hash of the vectors' values and the layer they steer: part of the revision (the strength is named apart)."""
    data = vectors.detach().to(torch.float32).contiguous().cpu().numpy().tobytes()
    return "sha256:" + hashlib.sha256(data + f"layer={layer}".encode()).hexdigest()[:16]


@dataclass
class Steering:
    """Vectors (layers × hidden), the layer steered and the strength; `model` names what they came from."""

    vectors: torch.Tensor
    layer: int
    strength: float
    model: dict
    settings: dict

    @property
    def digest(self) -> str:
        return vectors_digest(self.vectors, self.layer)

    def tag(self) -> str:
        """The revision suffix: vectors' hash, layer, strength and where it acts ("@answer" keeps these answers
        apart from any a store holds from when the hook steered every position)."""
        return f"+steer:{self.digest}:L{self.layer}x{self.strength:g}@answer"

    def check(self, model, name: str, where: str) -> None:
        """A clear error when the vectors were computed on a model of another shape."""
        shape = model_shape(model)
        mine = {"hidden_size": int(self.vectors.shape[1]), "num_layers": int(self.vectors.shape[0])}
        if shape != mine:
            raise InputError(f"the steering vectors were computed on {self.model.get('model', '?')} (hidden size "
                             f"{mine['hidden_size']}, {mine['num_layers']} layers) and cannot steer {name} (hidden "
                             f"size {shape['hidden_size']}, {shape['num_layers']} layers)", file=where)
        if not 0 <= self.layer < shape["num_layers"]:
            raise InputError(f"layer {self.layer} is outside the model's {shape['num_layers']} layers", file=where,
                             field="layer")

    def write(self, directory: str | Path, extra: dict | None = None) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"vectors": self.vectors.detach().to(torch.float32).contiguous().cpu()},
                  str(directory / VECTORS_FILE))
        settings = {**self.settings, **(extra or {}), "method": "activation", "model": self.model,
                    "hidden_size": int(self.vectors.shape[1]), "num_layers": int(self.vectors.shape[0]),
                    "layer": self.layer, "strength": self.strength, "hash": self.digest}
        (directory / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True, default=str) + "\n",
                                               encoding="utf-8")
        return directory


def read_steering(directory: str | Path, strength: float | None = None) -> Steering:
    """The steering folder's vectors and settings; `strength` overrides the one chosen when it was built."""
    directory = Path(directory)
    settings_path = directory / SETTINGS_FILE
    if not settings_path.is_file():
        raise InputError(f"no {SETTINGS_FILE}: not a steering folder (write one with `valuelab control steer`)",
                         file=str(settings_path))
    try:
        settings = json.loads(settings_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg}", file=str(settings_path), line=exc.lineno) from None
    if settings.get("method") != "activation":
        raise InputError(f"a {settings.get('method')!r} steering folder carries no vectors: give its system prompt "
                         f"with --system @{directory / 'system.txt'}", file=str(settings_path), field="method")
    vectors_path = directory / VECTORS_FILE
    if not vectors_path.is_file():
        raise InputError(f"missing {VECTORS_FILE}", file=str(vectors_path))
    from safetensors.torch import load_file

    vectors = load_file(str(vectors_path))["vectors"]
    for key in ("layer", "strength"):
        if not isinstance(settings.get(key), int | float):
            raise InputError(f"{key} must be a number", file=str(settings_path), field=key)
    steering = Steering(vectors, int(settings["layer"]), float(settings["strength"] if strength is None else strength),
                        settings.get("model", {}), settings)
    if settings.get("hash") and settings["hash"] != steering.digest:
        raise InputError(f"the vectors' hash {steering.digest} differs from {settings['hash']} in {SETTINGS_FILE}: "
                         "the folder was changed after it was written", file=str(vectors_path))
    return steering


class SteeringHook:
    """A forward hook on one decoder layer that adds `shift` to the last position's output; `remove()` takes it
    off, `paused()` turns it off for the forward passes inside (a shared prefix is no answer position), and
    `from_position(k)` steers every position from k on inside (a reply read in one pass, teacher-forced, is
    steered where generating it would have been)."""

    def __init__(self, block: torch.nn.Module, shift: torch.Tensor):
        self.shift, self.active, self.start = shift, True, -1
        self.handle = block.register_forward_hook(self)

    def __call__(self, _module, _inputs, output):
        if not self.active:
            return output
        hidden = output[0] if isinstance(output, tuple) else output
        hidden = torch.cat([hidden[:, :self.start], hidden[:, self.start:] + self.shift], dim=1)
        return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.active = False
        try:
            yield
        finally:
            self.active = True

    @contextmanager
    def from_position(self, start: int) -> Iterator[None]:
        self.start = start
        try:
            yield
        finally:
            self.start = -1

    def remove(self) -> None:
        self.handle.remove()


def add_hook(model, layer: int, vector: torch.Tensor, strength: float | torch.Tensor = 1.0) -> SteeringHook:
    """Add strength · vector to decoder layer `layer`'s output at the last position from now on (a vector that
    requires grad stays in the graph, for fitting it)."""
    block = decoder_layers(model)[layer]
    parameter = next(model.parameters())
    return SteeringHook(block, (strength * vector.to(torch.float32)).to(device=parameter.device, dtype=parameter.dtype))


def attach(model, steering: Steering) -> SteeringHook:
    """Steer `model` in place with `steering`; returns the hook."""
    return add_hook(model, steering.layer, steering.vectors[steering.layer], steering.strength)
