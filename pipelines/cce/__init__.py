"""Cross-Character Embedding (MIMIX): ``[character: Name] action.`` prompts, per-character learned tokens
(identity + behaviour) saved as ``cce.safetensors`` beside each library entry, the instant embedding of a
new character from its images and the short fit that improves it.

    from pipelines.cce import parse_prompt, scene_to_prompt, embed_character, learn_character, load_embedding

``prompt.py`` owns the prompt grammar (no torch); ``embedding.py`` the token files; ``learn.py`` new
characters. The library's tokens are trained by ``python -m pipelines.train cce``
(``pipelines/train/cce_stage.py``). Torch-using names are imported on first use, so the prompt parser
stays cheap for the UI.
"""

from __future__ import annotations

import importlib

from .prompt import (Action, Mention, Prompt, PromptError, Sentence, action_words, characters_prompt, parse_prompt,
                     prompt_characters, scene_to_prompt, with_scene_style)

_LAZY = {
    "CharacterEmbedding": "pipelines.cce.embedding", "load_embedding": "pipelines.cce.embedding",
    "fingerprint": "pipelines.cce.embedding", "identity_vector": "pipelines.cce.embedding",
    "embed_character": "pipelines.cce.learn", "fit_character": "pipelines.cce.learn",
    "learn_character": "pipelines.cce.learn",
}

__all__ = ["parse_prompt", "Prompt", "Sentence", "Mention", "Action", "PromptError", "action_words",
           "characters_prompt", "scene_to_prompt", "prompt_characters", "with_scene_style", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pipelines.cce' has no attribute {name!r}")
