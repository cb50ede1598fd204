"""Shared fixtures: a tiny random Llama model with a tokenizer trained in the test (no download)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "Answer with a few words only. Question: What is the capital of France? Paris",
    "Which planet is known as the red planet? Mars. Who wrote Hamlet? Shakespeare",
    "How many legs does a spider have? eight 8. The chemical symbol of gold is Au",
] * 20


def make_tiny_tokenizer():
    """A byte-level BPE tokenizer trained on a few sentences, with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["<pad>", "<|im_start|>", "<|im_end|>", "<unk>"]
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=special,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<|im_end|>",
                                  unk_token="<unk>", bos_token="<|im_start|>")
    tok.chat_template = CHAT_TEMPLATE
    tok.padding_side = "left"
    return tok


def make_tiny_model(vocab_size: int, seed: int = 0, layers: int = 2, heads: int = 2, d: int = 32):
    """A random Llama model: ``layers`` blocks, ``heads`` heads, hidden size ``d``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=256,
                      pad_token_id=0, eos_token_id=2, bos_token_id=1, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 0
    model.truthtrace_id = "tiny-llama"
    return model


def make_eos_model(vocab_size: int):
    """A tiny llama that stops early and unevenly: seed 2, the EOS row (id 2) of lm_head set to 0.1 x a random
    direction, so greedy answers to a handful of questions run 2 to 8 tokens."""
    import torch

    model = make_tiny_model(vocab_size, seed=2)
    with torch.no_grad():
        direction = torch.randn(model.config.hidden_size, generator=torch.Generator().manual_seed(5))
        model.lm_head.weight[2] = 0.1 * direction
    return model


# questions the early-stopping tiny llama (make_eos_model) answers with 2 to 8 tokens, unevenly
EOS_QUESTIONS = ["What is the capital of France?", "Who wrote Hamlet?", "How many legs does a spider have?",
                 "Which planet is red?", "What is the symbol of gold?", "Name a large ocean.",
                 "Who painted the Mona Lisa?", "What is 2+2?"]


@pytest.fixture(scope="session")
def eos_model(tiny_tokenizer):
    return make_eos_model(len(tiny_tokenizer))


@pytest.fixture(scope="session")
def eos_prompts(tiny_tokenizer):
    """Prompt token ids of :data:`EOS_QUESTIONS` in the default template."""
    from truthtrace.traces.capture import DEFAULT_TEMPLATE, build_prompt_ids

    return [build_prompt_ids(tiny_tokenizer, q, DEFAULT_TEMPLATE) for q in EOS_QUESTIONS]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer):
    return make_tiny_model(len(tiny_tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model, tiny_tokenizer):
    """:func:`tiny_model` and :func:`tiny_tokenizer` saved to a folder (a model spec the CLI and ranks load)."""
    d = tmp_path_factory.mktemp("tiny-model")
    tiny_model.save_pretrained(d)
    tiny_tokenizer.save_pretrained(d)
    return d
