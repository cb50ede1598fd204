"""Trace capture for one batch: prompts, greedy/sampled generation, then one forward pass.

Kept separate from the extract stage (which owns configs, resume and the store) so that
tests and the "stored equals live" check can call the very same capture code.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import torch

from truthtrace.models.attention import attention_by_layer
from truthtrace.naming import ANSWER_ENTROPY, ANSWER_LOGPROBS, TOKEN_IDS, layer_key

CAPTURE_MODES = ("forward", "generate")  # one exact forward pass after generation, or the generation steps
DEFAULT_TEMPLATE = "Answer with a few words only.\nQuestion: {question}"
SHOWN_REFUSALS = 10  # refused questions warned about one by one; the summary lists all


def build_prompt_ids(tokenizer, question: str, template: str, use_chat_template: bool = True,
                     system_prompt: str | None = None) -> list[int]:
    """Token ids of the prompt for one question: ``(P,)`` as a Python list."""
    content = template.format(question=question)
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": content})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(content)["input_ids"]


def prompt_limit(model_config, max_new_tokens: int, max_prompt_tokens: int | None = None) -> tuple[int | None, str]:
    """The longest prompt allowed, in tokens, and why: the model's context minus ``max_new_tokens``, or less.

    Args:
        model_config: the model's HF config (``max_position_embeddings`` is its context, when it has one).
        max_new_tokens: tokens generated after the prompt; they need room in the context too.
        max_prompt_tokens: a lower limit of the user's, or None.

    Returns:
        ``(limit, reason)``; ``(None, "")`` when neither the model nor ``max_prompt_tokens`` sets a limit.

    Raises:
        ValueError: ``max_new_tokens`` leaves no room for a prompt in the model's context.
    """
    context = getattr(model_config, "max_position_embeddings", None)
    limits = []
    if isinstance(context, int) and context > 0:
        if context - max_new_tokens < 1:
            raise ValueError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt in the model's "
                             f"context of {context} tokens")
        limits.append((context - max_new_tokens,
                       f"the model's context of {context} tokens minus max_new_tokens {max_new_tokens}"))
    if max_prompt_tokens is not None:
        limits.append((max_prompt_tokens, "set by --max-prompt-tokens / max_prompt_tokens"))
    return min(limits) if limits else (None, "")


def fitting_prompts(questions: Sequence, tokenizer, config, model_config):
    """Build every question's prompt; keep those within :func:`prompt_limit`.

    ``config`` is the extract stage's :class:`~truthtrace.traces.extract.ExtractConfig` (its prompt and
    length options).

    Returns:
        ``(kept, prompts, refused)``: the kept questions, their prompt ids (lists of ints, ``(P,)`` each) and
        ``[{"id", "reason"}]`` for every refused question. The first :data:`SHOWN_REFUSALS` refusals are
        warned about by id, the rest in one warning.
    """
    limit, why = prompt_limit(model_config, config.max_new_tokens, config.max_prompt_tokens)
    kept, prompts, refused = [], [], []
    for q in questions:
        ids = build_prompt_ids(tokenizer, q.question, config.prompt_template, config.use_chat_template,
                               config.system_prompt)
        if limit is not None and len(ids) > limit:
            refused.append({"id": q.id, "reason": f"prompt of {len(ids)} tokens is over the limit of {limit} "
                                                  f"({why})"})
            if len(refused) <= SHOWN_REFUSALS:
                warnings.warn(f"question {q.id!r} skipped: {refused[-1]['reason']}", stacklevel=3)
        else:
            kept.append(q)
            prompts.append(ids)
    if len(refused) > SHOWN_REFUSALS:
        warnings.warn(f"{len(refused) - SHOWN_REFUSALS} more questions skipped for too long a prompt "
                      "(all are listed in the summary's 'refused')", stacklevel=3)
    return kept, prompts, refused


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``(B, W)`` token ids and attention mask (generation pads on the left)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s)
        mask[i, width - len(s):] = 1
    return ids, mask


def _right_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


def stop_ids(model, tokenizer) -> set[int]:
    """Token ids that end an answer: the tokenizer's eos and pad, and the model's generation eos."""
    ids = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    eos = getattr(model.generation_config, "eos_token_id", None)
    ids.update(eos if isinstance(eos, list) else [eos])
    return {i for i in ids if i is not None}


def sampling_kwargs(tokenizer, do_sample: bool, temperature: float, top_p: float) -> dict:
    """``generate`` keyword arguments for greedy or sampled decoding."""
    kwargs = dict(do_sample=do_sample, pad_token_id=tokenizer.pad_token_id)
    if do_sample:
        return dict(kwargs, temperature=temperature, top_p=top_p)
    return dict(kwargs, temperature=None, top_p=None, top_k=None)  # silence sampling-flag warnings


def cut_answers(rows: list[list[int]], stops: set[int]) -> list[list[int]]:
    """Cut each generated row before its first stop token; an immediate stop keeps that token."""
    answers = []
    for row in rows:
        cut = next((j for j, t in enumerate(row) if t in stops), len(row))
        answers.append(row[:cut] if cut > 0 else row[:1])
    return answers


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: list[list[int]], max_new_tokens: int,
                     do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                     logits_processor: list | None = None) -> list[list[int]]:
    """Generate an answer for each prompt; returns answer token ids cut before the first stop token.

    An answer that stops at once keeps its stop token, so every answer has >= 1 token. ``logits_processor``:
    extra transformers logits processors run before each token is chosen (the sample stage's seeded noise).
    """
    device = model.device
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                         logits_processor=logits_processor, **sampling_kwargs(tokenizer, do_sample, temperature, top_p))
    return cut_answers(out[:, ids.shape[1]:].tolist(), stop_ids(model, tokenizer))


@dataclass(frozen=True)
class CaptureOptions:
    """What to keep from the forward pass (validated by the extract stage's config)."""

    hidden_layers: tuple[int, ...] | None = None  # None: all L+1
    attn_layers: tuple[int, ...] | None = None  # None: all L
    attentions: bool = True
    keep: str = "all"  # "all", "answer" or "last:K"

    def hidden_indices(self, n_hidden: int) -> tuple[int, ...]:
        """Hidden-state layers to keep from a model with ``n_hidden`` (= L+1) of them."""
        return tuple(self.hidden_layers) if self.hidden_layers is not None else tuple(range(n_hidden))

    def attn_indices(self, n_attn: int) -> tuple[int, ...]:
        """Attention layers to keep from a model with ``n_attn`` (= L) blocks; none when attentions are off."""
        if not self.attentions:
            return ()
        return tuple(self.attn_layers) if self.attn_layers is not None else tuple(range(n_attn))


def kept_start(keep: str, n_tokens: int, n_prompt: int) -> int:
    """First kept position for a ``keep`` rule over a sequence of ``n_tokens`` tokens."""
    if keep == "all":
        return 0
    if keep == "answer":
        return n_prompt
    return max(0, n_tokens - int(keep.split(":", 1)[1]))


def answer_record(seq: list[int], n_prompt: int, logp: torch.Tensor) -> dict[str, torch.Tensor]:
    """Token ids ``(T,)`` and the answer tokens' log-probs and entropies ``(A,)`` from ``logp`` ``(A, V)``."""
    tok = torch.tensor(seq, dtype=torch.long)
    return {TOKEN_IDS: tok.to(torch.int32),
            ANSWER_LOGPROBS: logp.gather(1, tok[n_prompt:, None]).squeeze(1).contiguous(),
            ANSWER_ENTROPY: -(logp.exp() * logp).sum(-1).contiguous()}


@torch.no_grad()
def forward_traces(model, seqs: list[list[int]], n_prompt: list[int], opts: CaptureOptions,
                   pad_id: int) -> list[dict[str, torch.Tensor]]:
    """One forward pass over prompt+answer sequences; returns one tensor dict per sample.

    Per sample with T tokens, P prompt tokens, A = T - P answer tokens and K kept positions:
    ``token_ids`` (T,), ``layers.{i}.hidden`` (K, d), ``layers.{i}.attn`` (H, K, T)
    — square (H, T, T) when all tokens are kept —, ``answer_logprobs`` and
    ``answer_entropy`` (A,) float32. Sequences are right-padded so every sample sees
    positions 0..T-1 exactly as an unbatched pass would.
    """
    ids, mask = _right_pad(seqs, pad_id)
    # the LM head only where an answer token is predicted: positions lo..hi-1 of any sample
    lo, hi = min(n_prompt) - 1, max(len(s) for s in seqs) - 1
    out = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                output_hidden_states=True, output_attentions=opts.attentions, use_cache=False,
                logits_to_keep=torch.arange(lo, hi, device=model.device))
    logp = torch.log_softmax(out.logits.float(), dim=-1)  # (B, hi - lo, V)
    hidden_layers = opts.hidden_indices(len(out.hidden_states))
    attn_layers = opts.attn_indices(model.config.num_hidden_layers)
    maps = kept_maps(model, out.attentions if opts.attentions else None, attn_layers)
    traces = []
    for b, seq in enumerate(seqs):
        t, p = len(seq), n_prompt[b]
        k0 = kept_start(opts.keep, t, p)
        rec = answer_record(seq, p, logp[b, p - 1 - lo: t - 1 - lo].cpu())  # position j predicts token j+1
        for i in hidden_layers:
            rec[layer_key(i, "hidden")] = out.hidden_states[i][b, k0:t].float().cpu().contiguous()
        for i in attn_layers:
            rec[layer_key(i, "attn")] = maps[i][b, :, k0:t, :t].float().cpu().contiguous()
        traces.append(rec)
    return traces


def kept_maps(model, attentions, layers: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """The ``(B, H, Q, K)`` attention maps of ``layers`` from one pass's ``out.attentions``, by layer index
    (in the order of ``layers``; under a hybrid backend ``out.attentions`` holds the eager layers' maps only).

    Raises:
        ValueError: a kept layer returned no map (e.g. it ran SDPA); the message names the layers and backend.
    """
    maps = attention_by_layer(model, attentions)
    missing = [i for i in layers if i not in maps]
    if missing:
        raise ValueError(f"no attention maps returned for layers {missing} (the model runs attention "
                         f"{getattr(model.config, '_attn_implementation', None)!r}); use --attn-backend auto or "
                         "eager, or keep no attention maps (--no-attentions)")
    return {i: maps[i] for i in layers}


def _stitch_attention(steps: list[dict], layer: int, width: int, b: int) -> torch.Tensor:
    """Rebuild sample ``b``'s ``(H, W, W)`` attention map of one layer from generation steps.

    ``steps[k]`` maps layer indices to step k's maps (:func:`kept_maps`). Step 0 holds the prompt's
    ``(B, H, P, P)`` maps, step k >= 1 the row of the token fed at position ``P + k - 1``: ``(B, H, 1, P + k)``.
    """
    first = steps[0][layer][b]
    h, p, _ = first.shape
    full = first.new_zeros((h, width, width))
    full[:, :p, :p] = first
    for k in range(1, width - p + 1):
        full[:, p + k - 1, : p + k] = steps[k][layer][b, :, 0]
    return full


@torch.no_grad()
def generate_with_traces(model, tokenizer, prompts: list[list[int]], opts: CaptureOptions, max_new_tokens: int,
                         do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                         logits_processor: list | None = None):
    """Generate and capture in one go, from the generation steps (no second forward pass).

    One extra token is generated so the last kept answer token has been fed to the model.
    Returns ``(answers, traces)`` shaped as :func:`generate_answers` and :func:`forward_traces`
    return them; values equal a forward pass up to KV-cache and padding round-off.
    """
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                         max_new_tokens=max_new_tokens + 1, return_dict_in_generate=True, output_hidden_states=True,
                         output_attentions=opts.attentions, output_logits=True, logits_processor=logits_processor,
                         **sampling_kwargs(tokenizer, do_sample, temperature, top_p))
    width = out.sequences.shape[1] - 1  # positions fed to the model
    pmax = ids.shape[1]
    answers = cut_answers(out.sequences[:, pmax:pmax + max_new_tokens].tolist(), stop_ids(model, tokenizer))
    if any(pmax + len(a) > width for a in answers):  # e.g. every answer stopped at once: not all fed
        seqs = [p + a for p, a in zip(prompts, answers)]
        return answers, forward_traces(model, seqs, [len(p) for p in prompts], opts, tokenizer.pad_token_id)
    layers = opts.attn_indices(model.config.num_hidden_layers)
    steps = [kept_maps(model, step, layers) for step in out.attentions] if layers else []
    return answers, [_sample_from_steps(out, steps, b, pmax - len(p), p, a, opts, width)
                     for b, (p, a) in enumerate(zip(prompts, answers))]


def _sample_from_steps(out, steps: list[dict], b: int, offset: int, prompt: list[int], answer: list[int],
                       opts: CaptureOptions, width: int) -> dict[str, torch.Tensor]:
    """One sample's tensors from generation outputs (``steps``: each step's maps by layer); its tokens sit at
    ``offset..offset+T-1``."""
    p, t = len(prompt), len(prompt) + len(answer)
    o, k0 = offset, kept_start(opts.keep, t, p)
    logits = torch.stack([out.logits[j][b] for j in range(len(answer))])  # (A, V): step j produced token j
    rec = answer_record(prompt + answer, p, torch.log_softmax(logits.float(), -1).cpu())
    for i in opts.hidden_indices(len(out.hidden_states[0])):
        hidden = torch.cat([step[i][b] for step in out.hidden_states], dim=0)  # (width, d)
        rec[layer_key(i, "hidden")] = hidden[o + k0:o + t].float().cpu().contiguous()
    for i in steps[0] if steps else ():  # the kept layers, in order
        full = _stitch_attention(steps, i, width, b)  # (H, width, width)
        rec[layer_key(i, "attn")] = full[:, o + k0:o + t, o:o + t].float().cpu().contiguous()
    return rec
