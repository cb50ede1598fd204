"""Where a batch's time goes: the model's first forward call (prefill) and the rest (decode)."""

from __future__ import annotations

import time


class StepTimer:
    """Context manager timing every forward call of ``model`` inside it (hooks removed on exit).

    ``prefill_s`` is the first call (the prompt), ``decode_s`` everything after it until exit (the
    generation steps and the sampling between them), ``total_s`` the whole block, ``steps`` the calls.
    """

    def __init__(self, model):
        self.model = model
        self.prefill_s = self.decode_s = self.total_s = 0.0
        self.steps = 0

    def _pre(self, module, args, kwargs=None):
        self._call_start = time.perf_counter()

    def _post(self, module, args, output):
        if self.steps == 0:
            self.prefill_s = time.perf_counter() - self._call_start
            self._first_end = time.perf_counter()
        self.steps += 1

    def __enter__(self) -> "StepTimer":
        self._hooks = [self.model.register_forward_pre_hook(self._pre), self.model.register_forward_hook(self._post)]
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        end = time.perf_counter()
        for h in self._hooks:
            h.remove()
        self.total_s = end - self._start
        self.decode_s = end - self._first_end if self.steps else 0.0
