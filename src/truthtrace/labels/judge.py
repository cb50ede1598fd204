"""The ``judge`` label rule: a local instruction model says whether an answer matches a reference answer.

String rules (exact match, F1, ROUGE-L) miss paraphrases and reward long answers that mention an
alias; papers that swap them for a judge see detector AUROCs move a lot (arXiv 2508.08285), which is
why ``evaluate --label-rules ...,judge`` grades every detector under both. The judge reads, per answer,

    Reference answers: Paris; City of Paris
    Proposed answer: The capital is Paris.
    Does the proposed answer mean the same as one of the reference answers? Reply with yes or no.

(in the model's chat template when it has one) and the verdict is correct when the next-token logit of
"yes" beats that of "no" (the best of each word's spellings: yes/Yes/ yes...). Nothing is generated and
nothing leaves the machine: the model is any local causal LM ``truthtrace.models.load_any`` reads
(``--judge-model DIR``, or the embedded ``smollm2-135m-instruct``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from truthtrace.models import load_any

PROMPT = ("Reference answers: {aliases}\nProposed answer: {answer}\n"
          "Does the proposed answer mean the same as one of the reference answers? Reply with yes or no.")
YES, NO = ("yes", "Yes", " yes", " Yes", "YES"), ("no", "No", " no", " No", "NO")


@dataclass
class JudgeConfig:
    """Settings of the judge.

    Args:
        model: a local causal LM (directory, .gguf, compressed dir, or the embedded name).
        batch_size: prompts per forward pass.
        max_tokens: prompts are cut to this many tokens (from the left, so the question stays).
        device: "cpu", "cuda" or "auto".
    Raises:
        ValueError: naming the field for an empty model or a non-positive size.
    """

    model: str
    batch_size: int = 8
    max_tokens: int = 384
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not str(self.model or "").strip():
            raise ValueError("model: the judge needs a local instruction model (--judge-model DIR)")
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {self.batch_size}")
        if self.max_tokens < 16:
            raise ValueError(f"max_tokens must be >= 16, got {self.max_tokens}")


def _first_ids(tok, words: Sequence[str]) -> list[int]:
    """The distinct first token ids of ``words`` (how the model would start writing each)."""
    ids = [tok.encode(w, add_special_tokens=False) for w in words]
    return sorted({i[0] for i in ids if i})


class Judge:
    """A loaded judge model; :meth:`p_correct` gives P(yes) per answer."""

    def __init__(self, config: JudgeConfig, model=None, tokenizer=None):
        self.config = config
        if model is None:
            loaded = load_any(config.model, dtype="float32", device=config.device)
            if loaded.kind != "causal":
                raise ValueError(f"--judge-model {config.model!r} is an encoder; the judge needs a causal "
                                 "instruction model")
            model, tokenizer = loaded.model, loaded.tokenizer
        self.model, self.tok = model.eval(), tokenizer
        self.tok.padding_side = "left"
        yes, no = _first_ids(self.tok, YES), _first_ids(self.tok, NO)
        # a first token both words start with (a bare space in byte-level BPE) decides nothing
        self.yes, self.no = [i for i in yes if i not in no], [i for i in no if i not in yes]
        if not self.yes or not self.no:
            raise ValueError(f"--judge-model {config.model!r}: its tokenizer cannot tell 'yes' from 'no'")

    def prompt(self, answer: str, aliases: Sequence[str]) -> str:
        """The judge's input text for one answer (chat template applied when the tokenizer has one)."""
        text = PROMPT.format(aliases="; ".join(aliases), answer=answer.strip() or "(empty)")
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                add_generation_prompt=True)
        return text + "\nAnswer:"

    @torch.no_grad()
    def p_correct(self, answers: Sequence[str], aliases: Sequence[Sequence[str]], progress: bool = False) -> np.ndarray:
        """P("yes") against "no" for each answer, ``(n,)`` float64 in [0, 1].

        Args:
            answers: ``n`` answer texts.
            aliases: ``n`` lists of accepted answers.
        """
        if len(answers) != len(aliases):
            raise ValueError(f"answers and aliases must have the same length, got {len(answers)} and {len(aliases)}")
        prompts = [self.prompt(a, al) for a, al in zip(answers, aliases)]
        out, bs = [], self.config.batch_size
        self.tok.truncation_side = "left"
        device = next(self.model.parameters()).device
        for i in tqdm(range(0, len(prompts), bs), desc="judge", disable=not progress):
            enc = self.tok(prompts[i:i + bs], return_tensors="pt", padding=True, truncation=True,
                           max_length=self.config.max_tokens, add_special_tokens=False).to(device)
            logits = self.model(**enc).logits[:, -1].float()  # (B, vocab); left padding: last = next token
            yes = logits[:, self.yes].max(-1).values
            no = logits[:, self.no].max(-1).values
            out.append(torch.sigmoid(yes - no).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0)

    def verdicts(self, answers: Sequence[str], aliases: Sequence[Sequence[str]], progress: bool = False) -> np.ndarray:
        """1 = correct per answer ``(n,)`` int64: P(yes) > 0.5."""
        return (self.p_correct(answers, aliases, progress) > 0.5).astype(np.int64)
