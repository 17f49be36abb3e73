"""CCE prompts: the ``[character: Name] action.`` sentences of MIMIX, with an optional
``[scene-style: cartoon|live-action]`` tag — parsing, name resolution against the library, and the
scene ↔ prompt round trip.

    p = parse_prompt("[scene-style: cartoon] [character: pip] chases [character: Dora]. [character: Zed] watches.")
    p.scene_style            "cartoon"
    p.characters             ["Pip", "Dora", "Zed"]         (display names, in order of first mention)
    p.ids                    ["pip", "dora", "zed"]         (library ids; None for characters given in ``known``)
    p.sentences[0].subjects  ["Pip"];  .objects ["Dora"];  .words ["chases"]
    p.actions_of("Dora")     [Action(words=("chases",), role="object", sentence=0)]

Grammar (what the parser accepts, and what it explains when it does not):

* a tag is ``[kind: value]``; kinds are ``character`` and ``scene-style`` (case and ``_``/space
  spelling of the kind do not matter). Anything else in brackets is an error that names the tag, its
  column and the known kinds; so are an unclosed ``[``, a stray ``]``, a tag with no ``:`` and an empty
  value. At most one scene style (repeating the same one is fine).
* sentences end at ``.``, ``!`` or ``?`` outside tags (names may contain dots: ``[character: Dr. Who]``).
  In a sentence, characters named before its first action word are its *subjects*, the others its
  *objects* (``A chases B``: A subject, B object; ``A and B swap places``: both subjects).
* names resolve case-insensitively by library id or display name (``Library.find``), then against
  ``known`` (the scene's own characters); an unknown name is an error that lists the known ones.

Who performs which motion track is the scene's business (``pipelines.scene``): this module only reads
and writes text.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..library import Library, check_style

TAG_KINDS = ("character", "scene-style")
_FILLER = {"and", ",", "&", "with"}            # words that join subjects: "A, B and C swap places"
_WORD = re.compile(r"[a-z][a-z'\-]*|\d+")


class PromptError(ValueError):
    """A prompt could not be parsed; the message says where and what to write instead."""


@dataclass(frozen=True)
class Mention:
    name: str                  # display name (the library's spelling when resolved)
    id: str | None             # library id, None for a scene-only (``known``) or unresolved name
    sentence: int
    role: str                  # "subject" | "object"
    span: tuple[int, int]      # character offsets of the tag in the prompt


@dataclass(frozen=True)
class Action:
    words: tuple[str, ...]     # the sentence's action words, lower case, tags removed
    role: str
    sentence: int


@dataclass
class Sentence:
    text: str                  # the sentence as written (tags included)
    subjects: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    words: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return self.subjects + self.objects


@dataclass
class Prompt:
    text: str
    scene_style: str | None
    sentences: list[Sentence]
    mentions: list[Mention]

    @property
    def characters(self) -> list[str]:
        """Every named character once, in order of first mention."""
        out: list[str] = []
        for m in self.mentions:
            if m.name not in out:
                out.append(m.name)
        return out

    @property
    def ids(self) -> list[str | None]:
        first = {}
        for m in self.mentions:
            first.setdefault(m.name, m.id)
        return [first[n] for n in self.characters]

    def actions_of(self, name: str) -> list[Action]:
        """What ``name`` does: the words of every sentence that mentions it, with its role there."""
        key = name.strip().lower()
        out = []
        for m in self.mentions:
            if m.name.lower() == key or (m.id or "").lower() == key:
                out.append(Action(tuple(self.sentences[m.sentence].words), m.role, m.sentence))
        return out


# ---------------------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------------------
def action_words(text: str) -> list[str]:
    """The lower-case words of plain text (no tags), as sentences' ``words`` are split."""
    return [w for w in _WORD.findall(text.lower()) if w not in _FILLER]


def _kind(raw: str) -> str:
    return re.sub(r"[\s_]+", "-", raw.strip().lower())


def _tags(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, value) of every tag; raises on unbalanced brackets and malformed tags."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "]":
            raise PromptError(f"prompt: stray ']' at column {i + 1}; tags look like [character: Name]")
        if c != "[":
            i += 1
            continue
        j = i + 1
        while j < len(text) and text[j] not in "[]":
            j += 1
        if j == len(text) or text[j] == "[":
            raise PromptError(f"prompt: the tag opened at column {i + 1} ({text[i:j][:30]!r}) is not closed; "
                              "end it with ']'")
        body = text[i + 1:j]
        tag = text[i:j + 1]
        if ":" not in body:
            words = body.split(None, 1)
            hint = f"[{words[0]}: {words[1]}]" if len(words) == 2 else "[character: Name]"
            raise PromptError(f"prompt: tag {tag!r} at column {i + 1} has no ':'; write {hint}")
        raw_kind, value = body.split(":", 1)
        kind, value = _kind(raw_kind), value.strip()
        if kind not in TAG_KINDS:
            close = difflib.get_close_matches(kind, TAG_KINDS, n=1)
            hint = f" (did you mean [{close[0]}: …]?)" if close else ""
            raise PromptError(f"prompt: unknown tag {tag!r} at column {i + 1}{hint}; tags are [character: Name] "
                              "and [scene-style: cartoon|live-action]")
        if not value:
            raise PromptError(f"prompt: tag {tag!r} at column {i + 1} is empty; "
                              + ("name a character, e.g. [character: Pip]" if kind == "character"
                                 else "give cartoon or live-action"))
        out.append((i, j + 1, kind, value))
        i = j + 1
    return out


class _Resolver:
    def __init__(self, library: Library | None, known: Iterable[str], resolve: bool):
        self.library = library if (library is not None or not resolve) else Library()
        self.known = {n.strip().lower(): n.strip() for n in known}
        self.resolve = resolve

    def __call__(self, name: str, where: str) -> tuple[str, str | None]:
        if not self.resolve:
            return name, None
        lc = self.library.find(name) if self.library is not None else None
        if lc is not None:
            return lc.name, lc.id
        if name.lower() in self.known:
            return self.known[name.lower()], None
        names = (self.library.names if self.library is not None else []) + \
            [n for n in self.known.values() if self.library is None or self.library.find(n) is None]
        close = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=1, cutoff=0.6)
        hint = f" (did you mean {next(n for n in names if n.lower() == close[0])}?)" if close else ""
        raise PromptError(f"prompt: unknown character {name!r} in {where}{hint}; known characters: "
                          + (", ".join(names) or "none (the library is empty)"))


def parse_prompt(text: str, *, library: Library | None = None, known: Sequence[str] = (),
                 resolve: bool = True) -> Prompt:
    """Parse a CCE prompt (see the module docstring). ``library`` defaults to the assets library;
    ``known`` adds names the scene itself defines (user characters); ``resolve=False`` keeps names as
    written (world captions of procedural characters, which no library holds)."""
    if not isinstance(text, str):
        raise PromptError(f"prompt: expected text, got {type(text).__name__}")
    tags = _tags(text)
    resolver = _Resolver(library, known, resolve)
    style = None
    for start, end, kind, value in tags:
        if kind != "scene-style":
            continue
        try:
            s = check_style(value, "scene-style")
        except ValueError:
            raise PromptError(f"prompt: [scene-style: {value}] at column {start + 1} is not a style; use "
                              "[scene-style: cartoon] or [scene-style: live-action]") from None
        if style is not None and s != style:
            raise PromptError(f"prompt: two scene styles ({style} and {s}); a clip has one scene style")
        style = s
    # split into sentences at . ! ? outside tags; scene-style tags are removed, character tags kept as tokens
    pieces: list[tuple[str, int, object]] = []          # ("text", offset, s) | ("char", offset, (end, value))
    pos = 0
    for start, end, kind, value in tags:
        pieces.append(("text", pos, text[pos:start]))
        if kind == "character":
            pieces.append(("char", start, (end, value)))
        pos = end
    pieces.append(("text", pos, text[pos:]))

    sentences: list[Sentence] = []
    mentions: list[Mention] = []
    current = Sentence("")
    seen_action = False
    sent_start = 0

    def close(end: int):
        nonlocal current, seen_action, sent_start
        current.text = text[sent_start:end].strip()
        if current.text and (current.names or current.words):
            sentences.append(current)
        current, seen_action, sent_start = Sentence(""), False, end

    for kind, offset, piece in pieces:
        if kind == "char":
            start, (end, value) = offset, piece
            name, cid = resolver(value, f"sentence {len(sentences) + 1} ({text[start:end]})")
            role = "object" if seen_action else "subject"
            (current.objects if seen_action else current.subjects).append(name)
            mentions.append(Mention(name, cid, len(sentences), role, (start, end)))
            continue
        for m in re.finditer(r"[^.!?]+|[.!?]+", piece):
            chunk = m.group(0)
            if chunk[0] in ".!?":
                close(offset + m.end())
                continue
            for w in _WORD.findall(chunk.lower()):
                if w not in _FILLER:
                    current.words.append(w)
                    seen_action = True
    close(len(text))
    # mention sentence indices were assigned while counting closed sentences; empty ones were dropped
    return Prompt(text, style, sentences, mentions)


# ---------------------------------------------------------------------------------------------------------
# scene ↔ prompt
# ---------------------------------------------------------------------------------------------------------
def tag(name: str) -> str:
    return f"[character: {name}]"


def join_names(names: Sequence[str]) -> str:
    tags = [tag(n) for n in names]
    return tags[0] if len(tags) == 1 else ", ".join(tags[:-1]) + " and " + tags[-1]


def with_scene_style(text: str, style: str) -> str:
    """``text`` with its scene style tag set to ``style`` (an existing tag is replaced)."""
    style = check_style(style, "scene_style")
    rest = re.sub(r"\[\s*scene[\s_-]*style\s*:[^\]]*\]\s*", "", text, flags=re.IGNORECASE).strip()
    return f"[scene-style: {style}] {rest}"


def characters_prompt(names: Sequence[str], action: str = "", scene_style: str | None = None) -> str:
    """A prompt naming ``names`` in this order: ``[character: A] and [character: B] <action>.``"""
    if not names:
        raise PromptError("names: a prompt needs at least one character")
    bad = [n for n in names if not str(n).strip() or "[" in str(n) or "]" in str(n)]
    if bad:
        raise PromptError(f"names: {bad} cannot be written as [character: Name] tags")
    verb = action.strip().rstrip(".!?") or ("appears" if len(names) == 1 else "appear together")
    text = f"{join_names(names)} {verb}."
    if scene_style:
        text = with_scene_style(text, scene_style)
    return text


# what a motion template's characters do, for prompts written from a scene
_TEMPLATE_ACTIONS = {"walk": "walk", "run": "run", "jump": "jump", "wave": "wave", "dance": "dance",
                     "chase": "chase each other", "highfive": "high-five", "hug": "hug", "swap": "swap places"}


def _slot_names(scene, library: Library | None) -> list[str]:
    library = library if library is not None else Library()
    return [library.get(c["id"], f"characters[{i}].id").name if "id" in c else c["name"]
            for i, c in enumerate(scene.characters)]


def _scene_style(scene) -> str | None:
    bg = scene.background or {}
    if "show" in bg:
        from ..world.shows import SHOWS
        return SHOWS[bg["show"]].style
    return None


def scene_to_prompt(scene, library: Library | None = None) -> str:
    """The scene's CCE prompt: its own when that names exactly its characters in slot order (with the
    scene style of a show background added), otherwise one written from its characters and motion."""
    names = _slot_names(scene, library)
    style = _scene_style(scene)
    if scene.prompt:
        try:
            p = parse_prompt(scene.prompt, library=library, known=names)
            if [n.lower() for n in p.characters] == [n.lower() for n in names]:
                if style and p.scene_style is None:
                    return with_scene_style(scene.prompt, style)
                return scene.prompt
        except PromptError:
            pass
    motion = scene.motion
    if "text" in motion and motion["text"].strip() and "[" not in motion["text"]:
        action = motion["text"]
    elif "template" in motion:
        action = _TEMPLATE_ACTIONS.get(motion["template"].split("-")[0], "")
    else:
        action = ""
    return characters_prompt(names, action, style)


def prompt_characters(prompt: str, library: Library | None = None, known: Sequence[str] = ()) -> list[dict]:
    """A prompt → the scene ``characters`` it names, in order: ``{"id": …}`` for library characters,
    ``{"name": …}`` for ``known`` ones (the scene supplies their image, mask and style)."""
    p = parse_prompt(prompt, library=library, known=known)
    if not p.characters:
        raise PromptError("prompt: names no character; write e.g. \"[character: Pip] waves.\"")
    return [{"id": cid} if cid else {"name": name} for name, cid in zip(p.characters, p.ids)]


__all__ = ["parse_prompt", "action_words", "Prompt", "Sentence", "Mention", "Action", "PromptError", "TAG_KINDS", "tag",
           "join_names", "with_scene_style", "characters_prompt", "scene_to_prompt", "prompt_characters"]
