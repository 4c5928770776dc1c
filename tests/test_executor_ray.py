"""The Ray executor on a local Ray instance: two actors holding the embedded model, one killed mid-run."""

from __future__ import annotations

import threading
import time

import pytest

from valuelab.errors import BackendError
from valuelab.models import load_model
from valuelab.models.base import ChoiceRequest
from valuelab.store import Store, StoredModel

ray = pytest.importorskip("ray")
from valuelab.executor import RayExecutor  # noqa: E402

pytestmark = pytest.mark.slow
REQUESTS = [ChoiceRequest(f"Which would you rather have?\nA: {k} apples from the market.\nB: {k + 3} pears from a "
                          "friend.\nAnswer A or B.", ("A", "B")) for k in range(48)]


@pytest.fixture(scope="module")
def local_ray():
    # Logical CPUs beyond the two real ones, so a third actor can be scheduled beside the first two.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def kill_when(model: StoredModel, executor: RayExecutor, rows: int) -> threading.Thread:
    """Kill the first actor (like a lost machine: no restart) once the store holds `rows` answers."""
    def watch():
        while len(model.store) < rows:
            time.sleep(0.02)
        ray.kill(executor.actors[0], no_restart=True)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_killed_actor_loses_nothing_and_nothing_is_asked_twice(local_ray, smollm2):
    executor = RayExecutor("smollm2", actors=2)
    pids = ray.get([a.pid.remote() for a in executor.actors])
    assert len(set(pids)) == 2
    model = StoredModel(smollm2, Store(), executor=executor, chunk_size=6)
    watcher = kill_when(model, executor, rows=6)
    results = model.choice_probs(REQUESTS)
    watcher.join(timeout=5)

    assert executor.lost == 1 and len(executor.alive) == 1
    assert model.counts.asked == len(REQUESTS) == len(model.store)  # every prompt answered and stored once
    assert model.counts.prompt_tokens > 0  # the workers' token counts reach the run's accounting
    local = StoredModel(smollm2, Store()).choice_probs(REQUESTS)
    assert [r.p_a for r in results] == pytest.approx([r.p_a for r in local], abs=1e-4)

    again = StoredModel(smollm2, model.store, executor=executor)
    again.choice_probs(REQUESTS)
    assert again.counts.asked == 0 and again.counts.reused == len(REQUESTS)
    executor.shutdown()


def test_losing_every_worker_is_a_clear_error_and_keeps_the_answers(local_ray):
    backend = load_model("synthetic:3")
    executor = RayExecutor("synthetic:3", actors=1)
    model = StoredModel(backend, Store(), executor=executor, chunk_size=4)
    model.choice_probs(REQUESTS[:8])
    ray.kill(executor.actors[0], no_restart=True)
    with pytest.raises(BackendError, match="all 1 Ray workers were lost"):
        model.choice_probs(REQUESTS)
    assert len(model.store) == 8
    resumed = StoredModel(backend, model.store)  # the same run, resumed in this process
    resumed.choice_probs(REQUESTS)
    assert resumed.counts.reused == 8 and resumed.counts.asked == len(REQUESTS) - 8


def test_workers_must_hold_the_model_the_store_keys_by(local_ray):
    executor = RayExecutor("synthetic:1", actors=1)
    with pytest.raises(BackendError, match="the workers must see the same model"):
        StoredModel(load_model("synthetic:2"), Store(), executor=executor)
    executor.shutdown()


def test_cli_runs_on_ray(local_ray, tmp_path, capsys):
    from valuelab.cli import main

    pairs = tmp_path / "pairs.csv"
    pairs.write_text("first,second\nYou receive $100.,You lose $100.\nA park is built.,A park is closed.\n")
    assert main(["prefer", "synthetic:5", "--executor", "ray", "--ray-actors", "2", "--pairs", str(pairs),
                 "--store", str(tmp_path / "store.sqlite"), "--out", str(tmp_path / "out.csv")]) == 0
    assert "4 prompts asked" in capsys.readouterr().err
    assert len((tmp_path / "out.csv").read_text().strip().splitlines()) == 3
