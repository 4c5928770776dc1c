"""Shared fixtures: the real embedded model and a real llama.cpp OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SERVER_MODEL = "smollm2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2-135M-Instruct through the hf: backend, loaded once per test session."""
    from valuelab.models import load_model

    return load_model("smollm2")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server serving the embedded GGUF; yields its base URL."""
    from valuelab.models.smollm2 import gguf_path

    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--model_alias", SERVER_MODEL, "--n_threads", "2"]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(base_url + "/models", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"llama-cpp-python server did not start (is llama-cpp-python[server] installed? "
                            f"`make test` installs it):\n{Path(log).read_text()[-2000:]}")
            time.sleep(0.5)
    yield base_url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def cli_env(tmp_path):
    """Environment for running the `valuelab` CLI in a subprocess with a private store."""
    env = dict(os.environ)
    env["VALUELAB_STORE"] = str(tmp_path / "store.sqlite")
    env.pop("OPENAI_API_KEY", None)
    return env
