"""kill -9 in the middle of `extract`, then resume: every question stored exactly once."""

import json
import os
import signal
import subprocess
import sys
import time

from truthtrace.data import load_bundled
from truthtrace.traces.extract import ExtractConfig, extract
from truthtrace.models import load_model
from truthtrace.store import TraceStore

CHILD = """
import sys
from truthtrace.data import load_bundled
from truthtrace.traces.extract import ExtractConfig, extract
from truthtrace.models import load_model
model, tok = load_model(sys.argv[1], device="cpu")
cfg = ExtractConfig(model="tiny", batch_size=2, max_new_tokens=4, shard_max_traces=4)
extract(load_bundled(n=300, seed=0), sys.argv[2], cfg, model, tok, progress=False)
"""


def _committed(store_dir) -> int:
    try:
        return len(json.loads((store_dir / "index.json").read_text())["shards"])
    except (OSError, ValueError, KeyError):
        return 0


def test_kill_9_then_resume(tmp_path, tiny_model, tiny_tokenizer):
    tiny_model.save_pretrained(tmp_path / "m")
    tiny_tokenizer.save_pretrained(tmp_path / "m")
    store_dir = tmp_path / "traces"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "m"), str(store_dir)], env=env)
    deadline = time.time() + 120
    while _committed(store_dir) < 3 and child.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "extraction finished before it could be killed"
    before = TraceStore(store_dir).ids()
    assert 12 <= len(before) < 300

    questions = load_bundled(n=300, seed=0)
    model, tok = load_model(str(tmp_path / "m"), device="cpu")
    cfg = ExtractConfig(model="tiny", batch_size=2, max_new_tokens=4, shard_max_traces=4)
    summary = extract(questions, store_dir, cfg, model, tok, progress=False)
    store = TraceStore(store_dir)
    assert summary["n_skipped"] == len(before)
    assert store.ids() == before + [q.id for q in questions if q.id not in set(before)]
    assert sorted(store.ids()) == sorted(q.id for q in questions)
    assert store.verify() == []
