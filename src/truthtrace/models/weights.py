"""Loading weights strictly: a checkpoint that lacks tensors, or holds tensors the model has no place for, is an error.

``from_pretrained`` fills a missing tensor with random init and only logs a report, so a model directory
missing one layer's tensors would load and write garbage traces. :func:`from_pretrained_checked` asks
transformers for its loading info (``output_loading_info=True``) and raises instead. transformers has
already dropped from ``missing_keys`` the weights the architecture ties (``lm_head.weight`` when
``config.tie_word_embeddings``) and the keys the model class declares ignorable; tied keys
(``model.all_tied_weights_keys``) are dropped here once more in case a version does not.
"""

from __future__ import annotations

SHOWN_KEYS = 10  # keys named per kind of problem; the count says how many there are in all


def _named(keys, shown: int = SHOWN_KEYS) -> str:
    """``"3 (a, b, c)"``: how many ``keys`` and the first ``shown`` of them, sorted."""
    keys = sorted(str(k) for k in keys)
    more = f", ... {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{len(keys)} ({', '.join(keys[:shown])}{more})"


def loading_problems(model, info: dict, exact: bool = True) -> list[str]:
    """What is wrong with a load, from ``from_pretrained``'s ``output_loading_info`` dict.

    Args:
        model: the loaded model (its tied keys are never reported missing).
        info: ``{"missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"}`` as transformers returns it;
            ``mismatched_keys`` holds ``(key, checkpoint_shape, model_shape)`` tuples.
        exact: the checkpoint was saved from this very model class, so missing and unexpected keys are errors;
            False (e.g. a base ``AutoModel`` read from a ``...ForMaskedLM`` checkpoint) reports only shape
            mismatches and error messages.

    Returns:
        one line per problem, empty when the weights match the model.
    """
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    missing = set(info.get("missing_keys") or ()) - tied
    problems = []
    if exact and missing:
        problems.append(f"missing tensors {_named(missing)}")
    if exact and info.get("unexpected_keys"):
        problems.append(f"unexpected tensors {_named(info['unexpected_keys'])}")
    if info.get("mismatched_keys"):
        shapes = [f"{k}: file {tuple(a)}, model {tuple(b)}" for k, a, b in info["mismatched_keys"]]
        problems.append(f"tensors of the wrong shape {_named(shapes)}")
    problems += [str(m) for m in info.get("error_msgs") or ()]
    return problems


def declares_class(config, model) -> bool:
    """True when ``config.architectures`` names ``model``'s class (or names none): the checkpoint is of this class."""
    archs = list(getattr(config, "architectures", None) or [])
    return not archs or type(model).__name__ in archs


def from_pretrained_checked(cls, path: str, **kwargs):
    """``cls.from_pretrained(path, **kwargs)`` that refuses weights not matching the config.

    Args:
        cls: a transformers auto class (e.g. ``AutoModelForCausalLM``).
        path: what ``from_pretrained`` loads (an HF directory or a hub id).
        kwargs: passed on (dtype, attn_implementation...).

    Returns:
        the model.

    Raises:
        ValueError: naming ``path`` and listing the missing, unexpected and wrongly shaped tensors.
    """
    model, info = cls.from_pretrained(path, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs)
    check_loaded(model, info, path)
    return model


def check_loaded(model, info: dict, where: str) -> None:
    """Raise ValueError naming ``where`` when :func:`loading_problems` finds any in ``info``."""
    problems = loading_problems(model, info, exact=declares_class(model.config, model))
    if problems:
        raise ValueError(f"{where}: the weights do not match its config ({type(model).__name__}): "
                         + "; ".join(problems) + ". Loading them would leave these tensors randomly initialised; "
                         "restore the complete weight files (or download the model again)")
