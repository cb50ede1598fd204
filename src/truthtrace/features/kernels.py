"""Attention kernels of the reducers: rows of weights as eager attention computes them, and SDPA's output with
every row's log-sum-exp from one fused kernel, so a row's diagonal weight needs no row of weights at all.

``fused_attention`` calls ``torch.ops.aten._scaled_dot_product_flash_attention_for_cpu`` (the kernel public SDPA
runs on the CPU, which also returns the log-sum-exp) and returns None where it does not apply (another device,
an op missing in this torch, dropout); callers then compute the diagonal from recomputed rows.
"""

from __future__ import annotations

import torch


def row_weights(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None, scaling: float,
                first_row: int) -> torch.Tensor:
    """Attention weights of ``R`` query rows as Llama's eager attention computes them.

    Args:
        q: ``(H, R, D)`` queries of absolute rows ``first_row .. first_row + R - 1``; k: ``(H, T, D)``.
        mask: additive ``(R, T)`` mask, or None for a causal one.
    Returns:
        ``(H, R, T)`` float32 (softmax in float32, rounded to the query dtype as eager attention does).
    """
    scores = torch.matmul(q, k.transpose(-1, -2)) * scaling  # (H, R, T)
    if mask is None:
        rows = torch.arange(first_row, first_row + q.shape[1], device=q.device).unsqueeze(1)
        mask = torch.zeros(q.shape[1], k.shape[1], dtype=scores.dtype, device=q.device).masked_fill(
            torch.arange(k.shape[1], device=q.device) > rows, torch.finfo(scores.dtype).min)
    scores = scores + mask.to(scores.device, scores.dtype)
    return torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype).float()


def fused_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None,
                    scaling: float, dropout: float = 0.0):
    """SDPA output and each query row's log-sum-exp of scores, in one CPU kernel.

    Args:
        query: ``(B, H, Q, D)``; key, value: ``(B, H_kv, W, D)``; mask: additive ``(B, 1, Q, >= W)`` or None.
    Returns:
        ``(output (B, Q, H, D), lse (B, H, Q) float32)``, or None where the fused kernel does not apply.
    """
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is None or query.device.type != "cpu" or dropout:
        return None
    n_rep = query.shape[1] // key.shape[1]
    if n_rep > 1:  # grouped heads, as transformers' repeat_kv repeats them
        key, value = key.repeat_interleave(n_rep, dim=1), value.repeat_interleave(n_rep, dim=1)
    if mask is not None:
        mask = mask[:, :, :, : key.shape[-2]]
    causal = mask is None and query.shape[2] == key.shape[2] and query.shape[2] > 1
    try:
        out, lse = op(query, key, value, 0.0, causal, attn_mask=mask, scale=scaling)
    except (RuntimeError, TypeError):  # a dtype or layout this kernel refuses: the caller falls back
        return None
    return out.transpose(1, 2).contiguous(), lse


def diagonal_weights(q: torch.Tensor, k: torch.Tensor, mask_diag: torch.Tensor | None, lse: torch.Tensor,
                     scaling: float) -> torch.Tensor:
    """Each row's weight on its own position from the row's log-sum-exp (no row of weights built).

    Args:
        q, k: ``(H, K, D)`` the query and key of the same ``K`` positions; mask_diag: ``(K,)`` the mask's
            diagonal or None; lse: ``(H, K)`` the rows' log-sum-exp.
    Returns:
        ``(H, K)`` float32, rounded to the query dtype as eager attention rounds its weights.
    """
    scores = (q.float() * k.float()).sum(-1) * scaling
    if mask_diag is not None:
        scores = scores + mask_diag.float()
    return (scores - lse.float()).exp().to(q.dtype).float()
