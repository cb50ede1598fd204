"""``torch.compile`` of a module's forward, in place, falling back to eager with a warning where it fails.

:func:`compile_forward` sets ``module.forward`` to an :class:`EagerFallback` (an instance attribute, so
``module(x)``, its hooks and its state dict are as before; Hugging Face ``generate`` calls it too) and
:func:`restore_forward` removes it again. Compilation is lazy: a failure shows at wrap time (e.g. an unknown
mode) or at a call (no C++ compiler, an op inductor cannot lower). Either way the module keeps running eager.
"""

from __future__ import annotations

import functools
import warnings
from typing import Callable

import torch

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def check_compile_mode(mode, field: str = "compile") -> None:
    """Raise ValueError naming ``field`` unless ``mode`` is None or one of :data:`COMPILE_MODES`."""
    if mode is not None and mode not in COMPILE_MODES:
        raise ValueError(f"{field} must be None or one of {COMPILE_MODES}, got {mode!r}")


class EagerFallback:
    """Calls ``compiled`` until a call of it fails, then ``eager`` for good, with one warning.

    A failing compiled call is repeated eager: when eager fails too, the inputs (not the compiler) are at
    fault, so that error is raised and compilation stays on. ``failed`` holds the compiler's error, if any.
    """

    def __init__(self, eager: Callable, compiled: Callable | None, what: str):
        self.eager, self.compiled, self.what = eager, compiled, what
        self.failed: BaseException | None = None
        functools.update_wrapper(self, eager)  # inspect.signature sees eager's (HF generate reads it)

    def __call__(self, *args, **kwargs):
        if self.compiled is None:
            return self.eager(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except Exception as err:  # a compiler error surfaces at the first call of each new graph
            out = self.eager(*args, **kwargs)
            self.disable(err)
            return out

    def disable(self, err: BaseException) -> None:
        """Run eager from now on, warning once that ``torch.compile`` failed with ``err``."""
        self.compiled, self.failed = None, err
        warnings.warn(f"torch.compile of {self.what} failed ({type(err).__name__}: {_first_line(err)}); "
                      "running eager", RuntimeWarning, stacklevel=3)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else "no message"


def compile_forward(module: torch.nn.Module, mode: str | None, what: str = "the model") -> EagerFallback | None:
    """Replace ``module.forward`` by a compiled one (``torch.compile(..., mode=mode)``) that falls back to eager.

    Args:
        module: changed in place; :func:`restore_forward` undoes it.
        mode: one of :data:`COMPILE_MODES`, or None to leave the module alone.
        what: how warnings name the module.
    Returns:
        The :class:`EagerFallback` now behind ``module.forward`` (None when ``mode`` is None).
    """
    check_compile_mode(mode)
    if mode is None:
        return None
    restore_forward(module)
    eager = module.forward
    wrapper = EagerFallback(eager, None, what)
    try:
        wrapper.compiled = torch.compile(eager, mode=mode)
    except Exception as err:  # e.g. no dynamo on this Python
        wrapper.disable(err)
    module.forward = wrapper
    return wrapper


def restore_forward(module: torch.nn.Module) -> None:
    """Give ``module`` back its class's own (eager) forward, undoing :func:`compile_forward`."""
    if isinstance(module.__dict__.get("forward"), EagerFallback):
        del module.__dict__["forward"]
