"""A supernet run killed with SIGKILL resumes and ends with the uninterrupted run's weights.

A real child process trains a tiny NB201 supernet (dropout, augmentation, a plateau schedule
that changes the learning rate during the run: everything random or stateful is exercised),
checkpointing every 2 steps; a progress reporter that sleeps slows its steps so that the kill
lands mid-run. The test kills it at a random moment after the first checkpoint, reruns the
same command to the end, and compares the final parameters (their hash) and the training
history with an uninterrupted run's. The children share a persistent compilation cache, so
only the first compiles.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys, time
import jax
jax.config.update("jax_disable_most_optimizations", True)
jax.config.update("jax_compilation_cache_dir", sys.argv[2])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
from zcjax import oneshot, spaces
from zcjax.sweep.progress import Progress

class SlowSteps(Progress):
    def update(self, n=1):
        time.sleep(float(sys.argv[3]))
        super().update(n)

network = spaces.get("nb201").config(channels=4, cells_per_stage=1)
config = oneshot.TrainConfig(network=network, batch_size=8, epochs=4, seed=7,
                             plateau_patience=0)
images = oneshot.load_data("cifar10")[0].subset(0, 48)
result = oneshot.train(config, images, sys.argv[1], checkpoint_every=2,
                       progress=SlowSteps(interval=1e9))  # lines only for messages
history = [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]
print(json.dumps({"hash": result.supernet.checkpoint_hash, "history": history,
                  "resumed_from": result.resumed_from, "step": result.supernet.step}))
"""


def start(run_dir: Path, cache: Path, sleep_s: float) -> subprocess.Popen:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(run_dir), str(cache),
                             str(sleep_s)], env=env, cwd=run_dir.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_to_end(run_dir: Path, cache: Path) -> dict:
    proc = start(run_dir, cache, 0.0)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def checkpoints(run_dir: Path) -> list[int]:
    if not run_dir.is_dir():
        return []
    return sorted(int(p.name) for p in run_dir.iterdir() if p.name.isdigit())


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("reference")
    cache = tmp / "jax_cache"
    result = run_to_end(tmp / "run", cache)
    assert result["step"] == 24 and result["resumed_from"] is None
    rates = [row["learning_rate"] for row in result["history"]]
    assert len(set(rates)) > 1, "the plateau schedule should act during the run"
    return result, cache


def interrupt(run_dir: Path, cache: Path, sig: int, delay: float) -> str:
    """Starts a run, sends ``sig`` ``delay`` seconds after its first checkpoint; its stderr."""
    proc = start(run_dir, cache, 0.15)
    deadline = time.monotonic() + 300
    while not checkpoints(run_dir):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, "the run finished before it could be interrupted"
    return err


def test_sigkill_then_resume_gives_the_uninterrupted_weights(tmp_path: Path, reference) -> None:
    expected, cache = reference
    run_dir = tmp_path / "killed"
    interrupt(run_dir, cache, signal.SIGKILL, random.Random(0).uniform(0.0, 1.5))
    saved = checkpoints(run_dir)
    assert saved and saved[-1] < 24

    resumed = run_to_end(run_dir, cache)
    assert resumed["resumed_from"] == saved[-1]
    assert resumed["hash"] == expected["hash"]
    assert resumed["history"] == expected["history"]


def test_ctrl_c_saves_the_last_step_then_resumes(tmp_path: Path, reference) -> None:
    expected, cache = reference
    run_dir = tmp_path / "interrupted"
    err = interrupt(run_dir, cache, signal.SIGINT, 0.5)
    assert "KeyboardInterrupt" in err and "rerun to resume" in err
    saved = checkpoints(run_dir)[-1]
    assert f"checkpoint of step {saved} saved" in err  # the step it had reached, not older

    resumed = run_to_end(run_dir, cache)
    assert resumed["resumed_from"] == saved
    assert resumed["hash"] == expected["hash"]
    assert resumed["history"] == expected["history"]
