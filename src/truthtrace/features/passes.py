"""The passes that feed the reducers of :mod:`truthtrace.features.forward`: one forward pass after generation
(``--capture forward``), or the generation steps themselves (``--capture generate``, no second pass).

In the generation steps each call sees the prompt (prefill) or one new token; :class:`StepReducer` keeps per
sample and layer the hidden rows fed so far and, per attention row, its diagonal weight, its masses on prompt
and answer columns and its band of the last ``max_nodes`` weights (for the graph window). Once the answers are
cut (at the first stop token) it hands these to a :class:`FeatureReducer`, which finishes the records exactly
as in a forward pass. Memory per sample: ``O(Lh T d)`` hidden rows, ``O(La H T)`` row statistics and
``O(G H T max_nodes)`` bands — never an ``(H, T, T)`` map.
"""

from __future__ import annotations

import torch

from truthtrace.features.forward import ROW_CHUNK, FeatureReducer, SamplePlan, reducing
from truthtrace.features.graphs import graph_window
from truthtrace.features.scalars import logprob_stats
from truthtrace.features.sequences import TokenLayout
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS
from truthtrace.traces.capture import answer_record, cut_answers, kept_start, left_pad, sampling_kwargs, stop_ids
from truthtrace.traces.exact_span import span_meta


def batch_plans(lengths: list[int], n_prompt: list[int], keep: str, graph: dict | None,
                spans: list | None = None) -> list[SamplePlan]:
    """The :class:`SamplePlan` of each right-padded sequence of ``lengths`` ``T_b`` (offset 0) under the ``keep``
    rule; ``spans``: each one's exact-answer span ``[first, last]`` or None (the trace meta's ``exact_span``)."""
    plans = []
    for t, p, span in zip(lengths, n_prompt, spans or [None] * len(lengths)):
        layout = TokenLayout(t, p, kept_start(keep, t, p), None if span is None else tuple(span))
        plans.append(SamplePlan(0, layout, graph_window(layout, graph["max_nodes"]) if graph else 0))
    return plans


@torch.no_grad()
def forward_records(model, seqs: list[list[int]], n_prompt: list[int], schema: dict, keep: str, pad_id: int,
                    row_chunk: int = ROW_CHUNK, spans: list | None = None) -> list[dict[str, torch.Tensor]]:
    """One forward pass over prompt+answer sequences, reduced to one feature record per sample as it runs.

    The pass is the one ``forward_traces`` runs (right-padded, so sample ``b`` sees positions ``0..T-1``; the
    LM head only where an answer token is predicted), but no hidden state or attention map is returned.

    Args:
        seqs: token ids of prompt + answer, ``(T_b,)`` each; n_prompt: their prompt lengths ``P_b``.
        schema: the feature schema (layers and graph settings); keep: the kept positions (``all``, ...).
        spans: per sample its exact-answer span ``[first, last]`` (answer-token indices) or None.
    Returns:
        per sample, :meth:`FeatureReducer.record`'s tensors (float32, graph ``x`` ``(n, d)`` not projected).
    """
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for b, seq in enumerate(seqs):
        ids[b, :len(seq)], mask[b, :len(seq)] = torch.tensor(seq), 1
    reducer = FeatureReducer(schema, row_chunk)
    reducer.start(batch_plans([len(s) for s in seqs], n_prompt, keep, schema["graph"], spans))
    lo = min(n_prompt) - 1
    with reducing(model, reducer):
        out = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device), use_cache=False,
                    logits_to_keep=torch.arange(lo, width - 1, device=model.device))
    logp = torch.log_softmax(out.logits.float(), dim=-1)  # (B, width - 1 - lo, V)
    records = []
    for b, (seq, p) in enumerate(zip(seqs, n_prompt)):
        answer = answer_record(seq, p, logp[b, p - 1 - lo: len(seq) - 1 - lo].cpu())  # position j predicts j+1
        records.append(reducer.record(b, logprob_stats(answer[ANSWER_LOGPROBS], answer[ANSWER_ENTROPY])))
    return records


class StepReducer:
    """Collects per-row reductions from the generation steps of one left-padded batch (see the module docstring).

    Every call (the prompt, then one token a step) is reduced for the whole batch at once: under left padding
    every prompt ends at column ``width`` and padding columns weigh exactly 0, so masses and bands need no
    per-sample slicing until :meth:`finish`. The reduced layers' output is computed from the same weights as
    eager attention computes it (``softmax(q k^T s + mask)`` rounded to the model dtype, times ``v``), so the
    answers are those an eager capture generates.

    Args:
        schema: the feature schema; prompt_lengths: ``P_b`` per sample; width: the padded prompt width.
        row_chunk: prompt rows whose weights are computed at once.
    """

    def __init__(self, schema: dict, prompt_lengths: list[int], width: int, row_chunk: int = ROW_CHUNK):
        self.schema, self.row_chunk, self.n_prompt, self.width = schema, row_chunk, list(prompt_lengths), width
        self.offsets = [width - p for p in prompt_lengths]
        self.hidden_layers, self.attn_layers = set(schema["hidden_layers"]), set(schema["attn_layers"])
        graph = schema["graph"] or {}
        self.graph_layers, self.band = set(graph.get("layers") or ()), graph.get("max_nodes", 0)
        self.rows = {i: [] for i in self.hidden_layers}  # (first column, (B, Q, d)) per call
        self.stats = {i: [] for i in self.attn_layers}  # (first column, diag, prompt, answer (B, H, Q), band)
        self.fed, self.first, self.largest_weights = 0, 0, ()

    def reduce_hidden(self, layer: int, hidden: torch.Tensor) -> None:
        """Keep ``layers.{layer}.hidden`` ``(B, Q, d)`` of this call (columns ``first .. first + Q - 1``)."""
        if layer == 0:  # the first hook of every call
            self.first, self.fed = self.fed, self.fed + hidden.shape[1]
        if layer in self.hidden_layers:
            self.rows[layer].append((self.first, hidden.to(torch.float32, copy=True)))

    def reduce_attention(self, layer: int, query, key, mask, scaling: float, lse=None, value=None):
        """Reduce this call's rows and return the layer's output as eager attention computes it.

        Args:
            query: ``(B, H, Q, D)``; key, value: ``(B, H_kv, W, D)``; mask: additive ``(B, 1, Q, W)`` or None.
            lse: unused (the bands need every row's weights anyway).
        Returns:
            ``(B, Q, H, D)`` the attention output, or None when ``layer`` is not reduced.
        """
        if layer not in self.attn_layers:
            return None
        n_rep = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(n_rep, dim=1), value.repeat_interleave(n_rep, dim=1)
        first_col, out = key.shape[2] - query.shape[2], []
        for r0 in range(0, query.shape[2], self.row_chunk):
            q = query[:, :, r0:r0 + self.row_chunk]
            scores = torch.matmul(q, key.transpose(-1, -2)) * scaling  # (B, H, R, W)
            if mask is not None:
                scores = scores + mask[:, :, r0:r0 + self.row_chunk, : key.shape[2]]
            elif q.shape[2] > 1:  # a plain causal prompt
                scores = scores + row_weights_mask(first_col + r0, q.shape[2], key.shape[2], scores)
            w = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
            out.append(torch.matmul(w, value))  # (B, H, R, D)
            self._keep(layer, w.float(), first_col + r0)
        return torch.cat(out, 2).transpose(1, 2).contiguous()

    def _keep(self, layer: int, w: torch.Tensor, first_col: int) -> None:
        """Diagonal, prompt and answer masses and (graph layers) the last ``max_nodes`` weights of rows ``(B, H,
        R, W)`` starting at column ``first_col``."""
        if not self.largest_weights or w.numel() > torch.Size(self.largest_weights).numel():
            self.largest_weights = tuple(w.shape)
        band = None
        if layer in self.graph_layers:
            rows = torch.arange(w.shape[2], device=w.device).unsqueeze(1)
            cols = rows + first_col - self.band + 1 + torch.arange(self.band, device=w.device)  # (R, N)
            band = w[:, :, rows, cols.clamp_min(0)] * (cols >= 0)  # (B, H, R, N)
        self.stats[layer].append((first_col, w.diagonal(offset=first_col, dim1=-2, dim2=-1),
                                  w[..., :self.width].sum(-1), w[..., self.width:].sum(-1), band))

    def finish(self, answers: list[list[int]], keep: str, spans: list | None = None) -> FeatureReducer:
        """A :class:`FeatureReducer` holding every sample's reductions once ``answers`` are cut (``spans``: their
        exact-answer spans, as for :func:`batch_plans`)."""
        reducer = FeatureReducer(self.schema, self.row_chunk)
        plans = batch_plans([p + len(a) for p, a in zip(self.n_prompt, answers)], self.n_prompt, keep,
                            self.schema["graph"], spans)
        reducer.start(plans)
        for b, plan in enumerate(plans):
            t, k0, o = plan.layout.n_tokens, plan.layout.kept_start, self.offsets[b]
            for layer, pieces in self.rows.items():
                rows = torch.cat([h[b, max(o - first, 0):] for first, h in pieces])  # (fed - o, d)
                reducer.add_hidden_rows(b, layer, rows[k0:t])
            for layer, pieces in self.stats.items():
                kept = [[None if x is None else x[b][:, max(o - first, 0):] for x in rest] for first, *rest in pieces]
                diag, prompt, answer = (torch.cat([k[j] for k in kept], 1)[:, k0:t] for j in range(3))
                window = self._window([k[3] for k in kept], t, plan.n_nodes) if layer in self.graph_layers else None
                reducer.add_attention_rows(b, layer, diag, prompt, answer, window)
        return reducer

    def _window(self, bands: list, t: int, n: int) -> torch.Tensor:
        """``(H, n, n)`` weights among the last ``n`` of ``t`` tokens, from the rows' bands ``(H, R, N)``."""
        bands = torch.cat(bands, 1)[:, t - n:t]  # (H, n, N): row r's columns r-N+1 .. r
        i, j = torch.arange(n).unsqueeze(1), torch.arange(n).unsqueeze(0)
        idx = (j - i + self.band - 1).clamp(0, self.band - 1).expand(n, n)
        return torch.gather(bands, 2, idx.unsqueeze(0).expand(bands.shape[0], n, n)) * (j <= i)


def row_weights_mask(first_row: int, n_rows: int, n_cols: int, like: torch.Tensor) -> torch.Tensor:
    """Additive causal mask ``(n_rows, n_cols)`` for rows ``first_row ..`` in ``like``'s dtype and device."""
    rows = torch.arange(first_row, first_row + n_rows, device=like.device).unsqueeze(1)
    return torch.zeros(n_rows, n_cols, dtype=like.dtype, device=like.device).masked_fill(
        torch.arange(n_cols, device=like.device) > rows, torch.finfo(like.dtype).min)


@torch.no_grad()
def generate_records(model, tokenizer, prompts: list[list[int]], schema: dict, keep: str, max_new_tokens: int,
                     sampling: tuple = (False, 1.0, 1.0), row_chunk: int = ROW_CHUNK,
                     questions: list[str] | None = None):
    """Generate answers and their feature records from the generation steps (no second forward pass).

    One extra token is generated so the last answer token has been fed (as ``generate_with_traces`` does); when
    generation stopped before that, the records come from :func:`forward_records` instead.

    Args:
        prompts: prompt token ids ``(P_b,)``; schema, keep: as for :func:`forward_records`;
        sampling: ``(do_sample, temperature, top_p)``; questions: the question texts, for the exact-answer
            spans (:func:`~truthtrace.traces.exact_span.span_meta`; None: the whole answer).
    Returns:
        ``(answers, records)``: answer token ids per sample and :func:`forward_records`-shaped records.
    """
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    steps = StepReducer(schema, [len(p) for p in prompts], ids.shape[1], row_chunk)
    with reducing(model, steps):
        out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                             max_new_tokens=max_new_tokens + 1, return_dict_in_generate=True, output_logits=True,
                             **sampling_kwargs(tokenizer, *sampling))
    pmax, fed = ids.shape[1], out.sequences.shape[1] - 1
    answers = cut_answers(out.sequences[:, pmax:pmax + max_new_tokens].tolist(), stop_ids(model, tokenizer))
    spans = [span_meta(tokenizer, a, q) for a, q in zip(answers, questions)] if questions is not None else None
    if any(pmax + len(a) > fed for a in answers):  # e.g. every answer stopped at once: not all fed
        seqs = [p + a for p, a in zip(prompts, answers)]
        return answers, forward_records(model, seqs, [len(p) for p in prompts], schema, keep,
                                        tokenizer.pad_token_id, row_chunk, spans)
    reducer, records = steps.finish(answers, keep, spans), []
    for b, (p, a) in enumerate(zip(prompts, answers)):
        logits = torch.stack([out.logits[j][b] for j in range(len(a))])  # (A, V): step j produced token j
        rec = answer_record(p + a, len(p), torch.log_softmax(logits.float(), -1).cpu())
        records.append(reducer.record(b, logprob_stats(rec[ANSWER_LOGPROBS], rec[ANSWER_ENTROPY])))
    return answers, records
