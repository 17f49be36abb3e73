"""CCE prompts: the parser's cases and errors, and the scene ↔ prompt round trip."""

import itertools

import numpy as np
import pytest

from pipelines.cce.prompt import (PromptError, characters_prompt, parse_prompt, prompt_characters, scene_to_prompt,
                                  with_scene_style)
from pipelines.library import Library
from pipelines.scene import Scene
from pipelines.paths import scenes_dir


@pytest.fixture(scope="module")
def library():
    return Library()


def test_parse_names_roles_words_and_style(library):
    p = parse_prompt("[scene-style: cartoon] [character: pip] chases [character: DORA]! [character: Zed] watches.",
                     library=library)
    assert p.scene_style == "cartoon"
    assert p.characters == ["Pip", "Dora", "Zed"] and p.ids == ["pip", "dora", "zed"]
    assert [s.subjects for s in p.sentences] == [["Pip"], ["Zed"]]
    assert p.sentences[0].objects == ["Dora"] and p.sentences[0].words == ["chases"]
    (a,) = p.actions_of("dora")
    assert a.role == "object" and a.words == ("chases",) and a.sentence == 0
    assert p.actions_of("Zed")[0].words == ("watches",)


def test_subjects_joined_by_and_and_commas(library):
    p = parse_prompt("[character: Hank], [character: Ivy] and [character: Sol] swap places.", library=library)
    assert p.sentences[0].subjects == ["Hank", "Ivy", "Sol"] and p.sentences[0].objects == []
    assert p.sentences[0].words == ["swap", "places"] and p.scene_style is None


def test_tag_spelling_is_forgiving_and_dots_in_names_are_kept(library):
    p = parse_prompt("[Scene_Style : Live Action] [ CHARACTER :  Marcus ] waves.", library=library)
    assert p.scene_style == "live-action" and p.characters == ["Marcus"]
    q = parse_prompt("[character: Dr. Who] waves. [character: Pip] jumps.", library=library, known=["Dr. Who"])
    assert q.characters == ["Dr. Who", "Pip"] and q.ids == [None, "pip"] and len(q.sentences) == 2


def test_every_world_caption_parses_into_its_cast():
    from pipelines.world import World
    world = World(3)
    motions = set()
    for i in range(60):
        plan = world.plan(i)
        p = parse_prompt(plan.caption, resolve=False)
        assert sorted(p.characters) == sorted({s.name for s in plan.specs}), plan.caption
        motions.add(plan.motion)
    assert len(motions) >= 7


@pytest.mark.parametrize("text, message", [
    ("[character: Pipp] waves.", "unknown character 'Pipp'.*did you mean Pip.*known characters: Pip, Bramble"),
    ("[charcter: Pip] waves.", r"unknown tag '\[charcter: Pip\]' at column 1 \(did you mean \[character"),
    ("[character Pip] waves.", r"has no ':'; write \[character: Pip\]"),
    ("[character: ] waves.", "is empty; name a character"),
    ("[character: Pip waves.", "opened at column 1 .* is not closed"),
    ("Pip] waves.", "stray ']' at column 4"),
    ("[scene-style: anime] [character: Pip] waves.", "is not a style; use .scene-style: cartoon"),
    ("[scene-style: cartoon] [character: Pip]. [scene-style: live-action]", "two scene styles"),
    ("[character: [Pip]] waves.", "is not closed"),
])
def test_errors_say_where_and_what_to_write(library, text, message):
    with pytest.raises(PromptError, match=message):
        parse_prompt(text, library=library)


def test_unknown_name_lists_scene_characters_too(library):
    with pytest.raises(PromptError, match="known characters: .*Sol, Ada$"):
        parse_prompt("[character: Bob] waves.", library=library, known=["Ada"])
    with pytest.raises(PromptError, match="expected text"):
        parse_prompt(None)


def test_scene_files_round_trip_through_prompts(library):
    for path in sorted(scenes_dir().glob("*.json")):
        scene = Scene.load(path, library)
        prompt = scene_to_prompt(scene, library)
        user = [c["name"] for c in scene.characters if "name" in c]
        expected = [{"id": c["id"]} if "id" in c else {"name": c["name"]} for c in scene.characters]
        assert prompt_characters(prompt, library, known=user) == expected, (path.name, prompt)
        style = parse_prompt(prompt, library=library, known=user).scene_style
        bg = (scene.background or {}).get("show")
        assert style == ({"meadow-mischief": "cartoon", "starport-scouts": "cartoon"}.get(bg, "live-action")
                         if bg else None)


def test_character_lists_round_trip_in_slot_order(library):
    rng = np.random.default_rng(0)
    names = library.names + ["Ada", "Dr. Who"]
    for n in (1, 2, 3, 5):
        for _ in range(6):
            pick = [names[i] for i in rng.choice(len(names), n, replace=False)]
            text = characters_prompt(pick, "wave", scene_style=str(rng.choice(["cartoon", "live-action"])))
            p = parse_prompt(text, library=library, known=["Ada", "Dr. Who"])
            assert p.characters == pick and p.sentences[0].subjects == pick


def test_scene_with_a_rewritten_prompt_and_motion(library):
    scene = Scene.from_dict({"version": 1, "characters": [{"id": "zed"}, {"id": "marcus"}, {"id": "pip"}],
                             "motion": {"template": "swap-3"}, "prompt": "[character: Pip] waves.",
                             "background": {"show": "harbor-lane"}}, library=library)
    prompt = scene_to_prompt(scene, library)           # the scene's prompt does not name its cast: rewritten
    assert prompt == ("[scene-style: live-action] [character: Zed], [character: Marcus] and [character: Pip] "
                      "swap places.")
    assert [c["id"] for c in prompt_characters(prompt, library)] == ["zed", "marcus", "pip"]


def test_with_scene_style_replaces_and_characters_prompt_checks(library):
    assert with_scene_style("[scene-style: cartoon] [character: Pip] hops.", "live_action") == \
        "[scene-style: live-action] [character: Pip] hops."
    with pytest.raises(PromptError, match="at least one character"):
        characters_prompt([])
    with pytest.raises(PromptError, match="cannot be written"):
        characters_prompt(["A]B"])
    with pytest.raises(PromptError, match="names no character"):
        prompt_characters("It is sunny.", library)
