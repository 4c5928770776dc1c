"""Where a run's missing answers are computed: in this process (the default), or sharded across Ray actors.

`StoredModel` decides what is missing from the store and writes every answer as its chunk comes back; an
executor only computes answers. `RayExecutor` keeps one backend per Ray actor (a transformers or vLLM model on
its GPU, or an API client) and hands chunks to whichever actor is free. The driver stays the only writer of the
content-addressed store, so a worker that dies loses only the chunk it was computing: that chunk goes back in
the queue for another worker, and nothing that was answered is asked again.

Ray is an optional extra (`pip install 'valuelab[ray]'`). On a cluster, `address="auto"` (or `RAY_ADDRESS`)
joins it; API keys are read from the environment on each worker, never shipped through Ray.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from valuelab.errors import BackendError, InputError

TOKEN_STATS = ("prompt_tokens", "completion_tokens")


@dataclass
class ChunkAnswers:
    """One chunk's answers and the tokens the worker's backend counted for them."""

    index: int
    answers: list
    prompt_tokens: int = 0
    completion_tokens: int = 0


def call_backend(backend, method: str, requests: list, args: tuple, index: int = 0) -> ChunkAnswers:
    """`backend.method(requests, *args)`, with the tokens its `stats` counted meanwhile."""
    stats = getattr(backend, "stats", None) or {}
    before = [stats.get(k, 0) for k in TOKEN_STATS]
    answers = getattr(backend, method)(requests, *args)
    used = [stats.get(k, 0) - b for k, b in zip(TOKEN_STATS, before, strict=True)]
    return ChunkAnswers(index, answers, *used)


class LocalExecutor:
    """Chunks one after another on the model's own backend."""

    name = "local"

    def check(self, identity: dict) -> None:
        """Nothing to check: the answers come from the model's own backend."""

    def map(self, backend, method: str, chunks: Sequence[list], args: tuple) -> Iterator[ChunkAnswers]:
        for index, requests in enumerate(chunks):
            yield call_backend(backend, method, requests, args, index)


class BackendWorker:
    """A Ray actor holding one backend, loaded from its spec on the worker's machine."""

    def __init__(self, spec: str, options: dict):
        from valuelab.models import load_model

        self.backend = load_model(spec, **options)

    def identity(self) -> dict:
        return self.backend.identity()

    def pid(self) -> int:
        return os.getpid()

    def call(self, method: str, requests: list, args: tuple, index: int) -> ChunkAnswers:
        return call_backend(self.backend, method, requests, args, index)


class RayExecutor:
    """Shards chunks across `actors` Ray actors, each holding the backend `spec` (loaded with `options`).

    `address` joins a running Ray cluster (None starts a local one, or joins `RAY_ADDRESS` when it is set);
    `num_cpus` / `num_gpus` are what each actor reserves (a GPU per actor for transformers or vLLM on a cluster).
    `lost` counts workers that died; each one's chunk in flight was handed to another worker.
    """

    name = "ray"

    def __init__(self, spec: str, options: dict | None = None, *, actors: int = 2, address: str | None = None,
                 num_cpus: float = 1, num_gpus: float = 0):
        try:
            import ray
        except ImportError as exc:
            raise InputError("--executor ray needs Ray: pip install 'valuelab[ray]'", field="executor") from exc
        if actors < 1:
            raise InputError(f"the Ray executor needs at least one actor, got {actors}", field="actors")
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address or os.environ.get("RAY_ADDRESS"), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        # Ray's process-level actor restart is off: a lost actor's chunk is retried on the others instead.
        worker = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)(BackendWorker)
        options = {k: v for k, v in (options or {}).items() if v is not None}
        self.actors = [worker.remote(spec, options) for _ in range(actors)]
        self.identities = ray.get([a.identity.remote() for a in self.actors])
        self.alive = list(self.actors)
        self.lost = 0

    def check(self, identity: dict) -> None:
        """Every worker must hold the very model the store keys its answers by."""
        for worker_identity in self.identities:
            if worker_identity != identity:
                raise BackendError(f"a Ray worker loaded {worker_identity}, but this run stores answers for "
                                   f"{identity}: the workers must see the same model and revision")

    def map(self, backend, method: str, chunks: Sequence[list], args: tuple) -> Iterator[ChunkAnswers]:
        ray = self.ray
        pending = deque(range(len(chunks)))
        idle = list(self.alive)
        in_flight: dict = {}
        while pending or in_flight:
            while pending and idle:
                actor, index = idle.pop(), pending.popleft()
                in_flight[actor.call.remote(method, chunks[index], args, index)] = (actor, index)
            (ref,), _ = ray.wait(list(in_flight), num_returns=1)
            actor, index = in_flight.pop(ref)
            try:
                answer = ray.get(ref)
            except ray.exceptions.RayActorError:
                self.alive.remove(actor)
                self.lost += 1
                pending.appendleft(index)
                if not self.alive:
                    raise BackendError(f"all {len(self.actors)} Ray workers were lost; what they answered is in "
                                       "the store, run the same command again to resume") from None
                continue
            idle.append(actor)
            yield answer

    def shutdown(self) -> None:
        for actor in self.alive:
            self.ray.kill(actor)
        self.alive = []
