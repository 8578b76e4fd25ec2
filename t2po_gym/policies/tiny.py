"""A tiny random-init causal LM with a real BPE tokenizer, for tests and CPU smoke runs.

``build_tiny_model`` trains a byte-level BPE on a small built-in text sample (ALFWorld,
WebShop and Search-QA style phrases in the ``<think>...</think><action>...</action>``
format), and builds a randomly initialised ``Qwen2ForCausalLM`` (hidden 64, 2 layers,
4 heads / 2 KV heads, about 0.1M parameters) on top. Both are deterministic for a seed:
the same seed gives the same vocabulary and the same weights, on any machine.

The model knows nothing: its outputs are noise. It exists so that every code path
(batched decoding, KV cache, TTI, TDS, the optimizer) runs in milliseconds on CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["build_tiny_model", "TAG_TOKENS", "SAMPLE_TEXT", "CHAT_TEMPLATE"]

#: Tags that become single special tokens when ``special_tags=True``.
TAG_TOKENS: tuple[str, ...] = (
    "<think>",
    "</think>",
    "<action>",
    "</action>",
    "<search>",
    "</search>",
    "<answer>",
    "</answer>",
    "<information>",
    "</information>",
)

PAD, EOS, IM_START, IM_END = "<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"

#: A ChatML template (the one Qwen uses), kept short. ``add_generation_prompt`` opens
#: the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SAMPLE_TEXT: tuple[str, ...] = (
    "You are in the middle of a room. Looking quickly around you, you see a cabinet 1, "
    "a countertop 1, a drawer 2, a fridge 1, a garbagecan 1, a microwave 1, a sinkbasin 1, "
    "a stoveburner 3, and a toaster 1.",
    "Your task is to: put a clean apple in fridge.",
    "Your task is to: heat some egg and put it in countertop.",
    "Your task is to: look at bowl under the desklamp.",
    "You arrive at fridge 1. The fridge 1 is closed. You open the fridge 1. "
    "In it, you see a lettuce 1, a potato 2, and a tomato 1.",
    "Nothing happens. You pick up the apple 1 from the countertop 1. "
    "You clean the apple 1 using the sinkbasin 1. You move the apple 1 to the fridge 1.",
    "go to cabinet 1, open drawer 2, close drawer 2, take mug 1 from shelf 3, "
    "move mug 1 to coffeemachine 1, heat egg 1 with microwave 1, cool pan 1 with fridge 1, "
    "use desklamp 1, examine book 2, inventory, look",
    "WebShop [SEP] Instruction: [SEP] i need a long lasting 6.76 fl oz bottle of l'eau "
    "d'issey, and price lower than 100.00 dollars [SEP] Search",
    "[SEP] Back to Search [SEP] Page 1 (Total results: 50) [SEP] Next > [SEP] B078GWRC1J "
    "[SEP] Men's Cotton T-Shirt, Navy, Large [SEP] $19.99 [SEP] size [SEP] small [SEP] "
    "medium [SEP] large [SEP] color [SEP] black [SEP] white [SEP] Buy Now",
    "search[red running shoes size 9] click[b07xyz1234] click[< prev] click[next >] "
    "click[back to search] click[buy now] click[description] click[features] click[reviews]",
    "Question: who directed the film that won the award in 1998? "
    "<search> film award 1998 director </search> "
    "<information> Doc 1 (Title: The Silver Lake) The Silver Lake is a 1998 film directed by "
    "Anna Berg. Doc 2 (Title: Anna Berg) Anna Berg is a director born in Oslo. </information> "
    "<answer> Anna Berg </answer>",
    "<think> I need to find the apple first. It is probably on the countertop or in the "
    "fridge. Let me go to the countertop 1. </think> <action> go to countertop 1 </action>",
    "<think> The task says to put a clean apple in the fridge. I have the apple, so I should "
    "clean it with the sinkbasin. </think> <action> clean apple 1 with sinkbasin 1 </action>",
    "<think> The product matches the size and the color, and the price is below the limit. "
    "I will buy it now. </think> <action> click[buy now] </action>",
    "<think> I do not know the answer yet, so I will search for it. </think> "
    "<action> <search> capital of the kingdom of Varessa </search> </action>",
    "Hmm, wait, let me think again. Maybe, maybe, maybe. I think I think I think so. "
    "First, second, then, next, finally, so, because, therefore, however.",
    "0 1 2 3 4 5 6 7 8 9 10 20 50 100 $ % . , ; : ! ? ' \" ( ) [ ] { } - _ / \\ | = + * # @ &",
)


def _train_tokenizer(vocab_size: int, special_tags: bool, chat_template: bool) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [PAD, EOS, IM_START, IM_END] + (list(TAG_TOKENS) if special_tags else [])
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The tokenizers trainer is deterministic for a fixed corpus order.
    tok.train_from_iterator(list(SAMPLE_TEXT) * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=None,
        unk_token=None,
        padding_side="left",
        additional_special_tokens=[IM_START, IM_END] + (list(TAG_TOKENS) if special_tags else []),
    )
    if chat_template:
        fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(
    path: str | Path | None = None,
    *,
    seed: int = 0,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 2048,
    special_tags: bool = True,
    chat_template: bool = True,
) -> tuple[Any, Any]:
    """Build (and optionally save) a tiny random ``Qwen2ForCausalLM`` and its tokenizer.

    Args:
        path: when given, ``save_pretrained`` both model and tokenizer there, so that
            ``HFPolicy(path)`` / ``AutoModelForCausalLM.from_pretrained(path)`` load them.
        seed: seeds the weight initialisation (``torch.manual_seed``); the tokenizer is
            deterministic by construction.
        vocab_size: BPE target size (byte-level, so at least 256 + specials).
        hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size: model shape.
        max_position_embeddings: the context length the model accepts.
        special_tags: make ``<think> </think> <action> </action>`` (and the Search-QA
            tags) single special tokens; ``False`` leaves them to the BPE, as in a model
            whose vocabulary has no ``</think>``.
        chat_template: attach a ChatML chat template to the tokenizer.

    Returns:
        ``(model, tokenizer)``: the model in eval mode on CPU, float32; the tokenizer pads
        on the left and has ``pad_token`` and ``eos_token`` set.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = _train_tokenizer(vocab_size, special_tags, chat_template)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    # Seed a private generator state: do not disturb the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.eval()
    if model.generation_config is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
    if path is not None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return model, tokenizer
