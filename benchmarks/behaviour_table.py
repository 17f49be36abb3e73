"""Behaviour signatures recovered from the ten named characters' ground-truth walks (World(3), 16 frames, 8 fps).

    python -m benchmarks.behaviour_table
"""
from pipelines.world import NAMED, World
from pipelines.eval.behaviour import estimate_behaviour, nearest_signature
w = World(3); cands = {c.id: c.behaviour for c in NAMED}
print("| character | gait Hz (true) | bounce (true) | arm swing rad (true) | nearest signature |")
print("|---|---|---|---|---|")
for i, c in enumerate(NAMED):
    e = estimate_behaviour(w.clip(i, characters=[c.id], motion="walk").keypoints[:, 0], 8.0)
    b = c.behaviour
    print(f"| {c.name} | {e.gait_hz:.3f} ({b.gait_hz}) | {e.bounce:.4f} ({b.bounce}) | {e.arm_swing:.3f} ({b.arm_swing}) | {nearest_signature(e, cands)[0]} |")
