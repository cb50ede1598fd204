"""Training-free per-trace scores: log-prob statistics, Lookback Lens ratios, LLM-Check scores.

All functions take one trace's tensors in float32 and handle every layer at once.
Attention maps are ``(La, H, K, T)``: rows are the kept positions (absolute ``k0..T-1``),
columns every position; they are square when all tokens are kept.
"""

from __future__ import annotations

import torch

from truthtrace.features.sequences import TokenLayout

LOG_EPS = 1e-8  # attention weights below this (fp16 underflow) count as 1e-8 inside a log
SVD_ALPHA = 1e-3  # LLM-Check's ridge on the Gram matrix, so the zero singular values stay finite


def logprob_stats(logprobs: torch.Tensor, entropy: torch.Tensor) -> torch.Tensor:
    """The 8 answer statistics named in ``config.LOGPROB_STATS``.

    Args:
        logprobs: ``(A,)`` log-prob of each answer token.
        entropy: ``(A,)`` entropy of the next-token distribution at each answer token.
    Returns:
        ``(8,)`` float32: mean, min, std, last log-prob; mean, max, std entropy; A.
        Standard deviations are population ones (0 for one token); an empty answer gives zeros.
    Raises:
        ValueError: when the two vectors differ in length.
    """
    if logprobs.shape != entropy.shape or logprobs.dim() != 1:
        raise ValueError(f"answer log-probs {tuple(logprobs.shape)} and entropies {tuple(entropy.shape)} "
                         "must be vectors of one length")
    n = logprobs.numel()
    if n == 0:
        return torch.zeros(8)
    lp, ent = logprobs.float(), entropy.float()
    return torch.stack([lp.mean(), lp.min(), lp.std(unbiased=False), lp[-1],
                        ent.mean(), ent.max(), ent.std(unbiased=False), torch.tensor(float(n))])


def lookback_ratio(attn: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
    """Lookback Lens ratio per layer and head, averaged over the answer tokens.

    For an answer token's row: mass on prompt columns / (mass on prompt + mass on answer
    columns up to and including itself — the "new tokens" of the Lookback Lens paper).

    Args:
        attn: ``(La, H, K, T)`` attention maps of one trace.
        layout: where prompt and answer sit.
    Returns:
        ``(La, H)`` float32 in [0, 1]; 1 = the answer looks only at the prompt.
    """
    rows = attn[:, :, layout.answer_rows()]  # (La, H, A', T)
    return lookback_from_mass(rows[..., :layout.n_prompt].sum(-1), rows[..., layout.n_prompt:].sum(-1))


def lookback_from_mass(prompt: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """Lookback ratios averaged over answer rows, from each row's attention mass on the prompt and on the answer.

    Args:
        prompt, answer: ``(..., A')`` mass of each answer row on prompt columns and on answer columns.
    Returns:
        ``(...)`` float32: mean over rows of ``prompt / (prompt + answer)``.
    """
    return (prompt / (prompt + answer).clamp_min(1e-12)).mean(-1)


def attn_logdet(attn: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
    """LLM-Check attention score: mean over heads of the mean log diagonal of the attention map.

    A causal map is lower-triangular, so the mean log of its diagonal over the stored
    rows is its log-determinant divided by the number of rows.

    Args:
        attn: ``(La, H, K, T)``; row ``r`` is absolute position ``k0 + r``, so its diagonal
            entry is column ``k0 + r``.
        layout: gives ``k0``.
    Returns:
        ``(La,)`` float32, <= 0 (0 for identity maps); weights under ``LOG_EPS`` are clamped.
    """
    return logdet_from_diagonal(torch.diagonal(attn, offset=layout.kept_start, dim1=-2, dim2=-1))


def logdet_from_diagonal(diag: torch.Tensor) -> torch.Tensor:
    """The attention score of :func:`attn_logdet` from the maps' diagonals ``(..., H, K)``: returns ``(...)``."""
    return diag.clamp_min(LOG_EPS).log().mean(-1).mean(-1)


def hidden_svd(hidden: torch.Tensor, layout: TokenLayout, alpha: float = SVD_ALPHA) -> torch.Tensor:
    """LLM-Check hidden score: mean log singular value of the token-centred hidden states.

    Uses the answer tokens when at least two are stored, else every stored token. With
    singular values ``s_i`` of the centred ``(n, d)`` matrix, the score is
    ``mean_i 0.5 * log(s_i**2 + alpha)``: the mean log eigenvalue of LLM-Check's ridged
    Gram matrix, halved so it reads as a log singular value.

    Args:
        hidden: ``(Lh, K, d)`` float32 hidden states.
        layout: where the answer sits.
        alpha: ridge keeping the (always present) zero singular value finite.
    Returns:
        ``(Lh,)`` float32.
    """
    rows = layout.answer_rows()
    x = hidden[:, rows] if rows.stop - rows.start >= 2 else hidden
    x = x - x.mean(dim=1, keepdim=True)  # (Lh, n, d)
    s = torch.linalg.svdvals(x)  # (Lh, min(n, d))
    return 0.5 * (s.square() + alpha).log().mean(-1)
