"""What a validation run finds: its options, one :class:`Problem` per finding, the :class:`ValidationReport`.

Check names and severities are the closed sets :data:`CHECKS` and :data:`SEVERITIES`
(documented in ``docs/VALIDATE.md``); the shard walk is in :mod:`.stage`, the checks in :mod:`.checks`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

CHECKS = ("index", "schema", "files", "checksum", "shard_doc", "keys", "shape", "dtype", "tokens", "decode",
          "finite", "fp16_range", "attn_rows", "attn_causal", "labels", "internal")
SEVERITIES = ("error", "warning")


@dataclass
class ValidateConfig:
    """Options of the validate stage.

    Attributes:
        attn_tolerance: allowed ``|row sum - 1|`` of attention maps; None picks 4 machine
            epsilons of the coarser of the stored dtype and the schema's ``model_dtype``.
        causal: attention maps must be zero above the diagonal (decoder LMs).
        check_values: decode every tensor (False: checksums, shapes and token counts only).
        progress: show a progress bar.
    """

    attn_tolerance: float | None = None
    causal: bool = True
    check_values: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.attn_tolerance is not None and not 0 < self.attn_tolerance < 1:
            raise ValueError(f"attn_tolerance must be in (0, 1), got {self.attn_tolerance!r}")


@dataclass
class Problem:
    """One finding: which ``check`` found it, ``severity`` error/warning, and where."""

    check: str
    severity: str
    shard: str | None
    trace_id: str | None
    key: str | None
    message: str


@dataclass
class ValidationReport:
    """Everything :func:`validate_store` found; ``ok`` is True when there is no error."""

    path: str
    problems: list[Problem] = field(default_factory=list)
    counts: dict = field(default_factory=lambda: {"shards": 0, "traces": 0, "tensors": 0, "bytes_read": 0})
    seconds: float = 0.0

    def add(self, check: str, severity: str, message: str, shard=None, trace_id=None, key=None) -> None:
        """Record one problem (``check`` in :data:`CHECKS`, ``severity`` in :data:`SEVERITIES`)."""
        self.problems.append(Problem(check, severity, shard, trace_id, key, message))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def by_check(self) -> dict[str, dict[str, int]]:
        """``{check: {"error": n, "warning": n}}`` for every check in :data:`CHECKS`."""
        out = {c: {"error": 0, "warning": 0} for c in CHECKS}
        for p in self.problems:
            out.setdefault(p.check, {"error": 0, "warning": 0})[p.severity] += 1
        return out

    def to_dict(self) -> dict:
        """Machine-readable form (the ``--json`` output)."""
        counts = {**self.counts, "errors": len(self.errors), "warnings": len(self.warnings),
                  "by_check": self.by_check()}
        return {"path": self.path, "ok": self.ok, "seconds": round(self.seconds, 3), "counts": counts,
                "problems": [asdict(p) for p in self.problems]}


@dataclass
class Context:
    """What every shard check needs: the report, the schema, the options and the tolerance."""

    report: ValidationReport
    schema: dict
    storage: dict
    config: ValidateConfig
