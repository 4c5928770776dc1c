"""Where a run's missing answers are computed: in this process (the default), or sharded across Ray actors.

`StoredModel` decides what is missing from the store and writes every answer as its chunk comes back; an
executor only computes answers. `LocalExecutor` asks the model's own backend chunk after chunk, or, for a
`concurrent` backend (an API client), hands it every missing request of the call at once and cuts the answers
into chunks as they arrive: the client keeps as many requests in flight as the server takes, while the store
still commits every chunk. `RayExecutor` keeps one backend per Ray actor (a transformers or vLLM model on
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

COUNTED = ("prompt_tokens", "completion_tokens", "requests")
"""What a backend may count in its `stats`: tokens in and out, and requests sent (retries included)."""


def counted(backend) -> dict[str, int]:
    """The backend's running totals of `COUNTED` (only those it keeps)."""
    stats = getattr(backend, "stats", None) or {}
    return {k: stats[k] for k in COUNTED if k in stats}


@dataclass
class ChunkAnswers:
    """Answers to some of the requests handed to `map` (`positions` in that list), with the tokens and requests
    the backend counted meanwhile; `requests` is None when the backend does not count them."""

    positions: list[int]
    answers: list
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int | None = None


class Meter:
    """What a backend counted between one `chunk` and the next."""

    def __init__(self, backend):
        self.backend, self.last = backend, counted(backend)

    def chunk(self, positions: list[int], answers: list) -> ChunkAnswers:
        now = counted(self.backend)
        used = {k: v - self.last.get(k, 0) for k, v in now.items()}
        self.last = now
        return ChunkAnswers(positions, answers, used.get("prompt_tokens", 0), used.get("completion_tokens", 0),
                            used.get("requests"))


def call_backend(backend, method: str, requests: list, args: tuple, positions: list[int]) -> ChunkAnswers:
    """`backend.method(requests, *args)`, with what its `stats` counted meanwhile."""
    meter = Meter(backend)
    return meter.chunk(positions, getattr(backend, method)(requests, *args))


def chunked(n: int, size: int) -> list[list[int]]:
    return [list(range(start, min(n, start + size))) for start in range(0, n, size)]


class LocalExecutor:
    """The model's own backend, in this process: chunk after chunk, or for a `concurrent` backend (an API
    client) every request at once, its answers handed back in chunks as they arrive."""

    name = "local"

    def check(self, identity: dict) -> None:
        """Nothing to check: the answers come from the model's own backend."""

    def map(self, backend, method: str, requests: Sequence, args: tuple, chunk_size: int) -> Iterator[ChunkAnswers]:
        if not backend.concurrent:
            for positions in chunked(len(requests), chunk_size):
                yield call_backend(backend, method, [requests[p] for p in positions], args, positions)
            return
        meter, positions, answers = Meter(backend), [], []
        stream = backend.stream(method, requests, args)
        try:
            for position, answer in stream:
                positions.append(position)
                answers.append(answer)
                if len(positions) >= chunk_size:
                    yield meter.chunk(positions, answers)
                    positions, answers = [], []
        except GeneratorExit:  # the caller stopped listening
            raise
        except BaseException:
            if positions:  # what came back before the failure is still committed
                yield meter.chunk(positions, answers)
            raise
        finally:
            stream.close()
        if positions:
            yield meter.chunk(positions, answers)


class BackendWorker:
    """A Ray actor holding one backend, loaded from its spec on the worker's machine."""

    def __init__(self, spec: str, options: dict):
        from valuelab.models import load_model

        self.backend = load_model(spec, **options)

    def identity(self) -> dict:
        return self.backend.identity()

    def pid(self) -> int:
        return os.getpid()

    def call(self, method: str, requests: list, args: tuple, positions: list[int]) -> ChunkAnswers:
        return call_backend(self.backend, method, requests, args, positions)


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

    def map(self, backend, method: str, requests: Sequence, args: tuple, chunk_size: int) -> Iterator[ChunkAnswers]:
        ray = self.ray
        chunks = chunked(len(requests), chunk_size)
        pending = deque(range(len(chunks)))
        idle = list(self.alive)
        in_flight: dict = {}
        while pending or in_flight:
            while pending and idle:
                actor, index = idle.pop(), pending.popleft()
                positions = chunks[index]
                in_flight[actor.call.remote(method, [requests[p] for p in positions], args, positions)] = (actor, index)
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
