"""The studio's own components, built on ``gr.HTML`` with our JavaScript:

* the **library grid** — character cards grouped by show with style badges; a click picks or unpicks
  (event ``pick``, data ``{id}``); picked cards wear their identity colour and slot number;
* the **identity chips** — one column per motion track, each holding the chip of the character that
  performs it, in the character's identity colour (``pipelines.pose.palette``). Dragging a chip onto
  another track (mouse, pen or touch: pointer events) or moving it with the arrow keys sends
  ``reorder`` with ``{slot, track}``; the × on a chip sends ``remove`` with ``{slot}``.

The HTML is rendered here in Python (names escaped) so handlers can be tested without a browser; the
JavaScript only moves chips for immediate feedback and reports what the creator did — the server
decides the new assignment (``studio.compose.move_to_track``) and sends the row back.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from pipelines.pose.palette import NAMES as COLOR_NAMES
from pipelines.pose.palette import slot_hex

STYLE_LABEL = {"cartoon": "cartoon", "live-action": "live-action"}


@dataclass
class Card:
    id: str
    name: str
    style: str
    thumb: str                  # data URI
    slot: int = -1              # identity slot when picked


@dataclass
class ShowGroup:
    title: str
    style: str | None           # None for a mixed group (the creator's own characters)
    blurb: str
    cards: list[Card]


def badge(style: str) -> str:
    return f'<span class="xo-badge xo-{escape(style)}">{escape(STYLE_LABEL.get(style, style))}</span>'


def library_html(groups: list[ShowGroup], picked: int, limit: int, query: str = "") -> str:
    if not any(g.cards for g in groups):
        msg = f"No character matches “{escape(query)}”." if query else "The library is empty."
        return f'<div class="xo-lib"><p class="xo-empty">{msg}</p></div>'
    parts = [f'<div class="xo-lib" data-picked="{picked}"><p class="xo-count">'
             f'<b>{picked}</b> of {limit} picked · click a card to add or remove it</p>']
    for g in groups:
        if not g.cards:
            continue
        parts.append(f'<section class="xo-show"><header><h4>{escape(g.title)}</h4>'
                     f'{badge(g.style) if g.style else ""}<small>{escape(g.blurb)}</small></header>'
                     '<div class="xo-cards">')
        for c in g.cards:
            on = c.slot >= 0
            style = f' style="--c:{slot_hex(c.slot)}"' if on else ""
            parts.append(
                f'<button type="button" class="xo-card{" picked" if on else ""}" data-id="{escape(c.id)}"{style} '
                f'aria-pressed="{str(on).lower()}" title="{escape(c.name)} · {escape(c.style)}">'
                f'<img src="{c.thumb}" alt="" draggable="false">'
                f'<span class="xo-name">{escape(c.name)}</span>{badge(c.style)}'
                + (f'<span class="xo-slot">{c.slot + 1}</span>' if on else "") + "</button>")
        parts.append("</div></section>")
    parts.append("</div>")
    return "".join(parts)


LIBRARY_JS = r"""
element.addEventListener('click', (e) => {
  const card = e.target.closest('[data-id]');
  if (card && element.contains(card)) trigger('pick', {id: card.dataset.id});
});
"""

LIBRARY_CSS = r"""
.xo-lib { display: flex; flex-direction: column; gap: 14px; }
.xo-count { margin: 0; font-size: 13px; color: var(--body-text-color-subdued); }
.xo-empty { margin: 24px 0; text-align: center; color: var(--body-text-color-subdued); }
.xo-show header { display: flex; align-items: baseline; gap: 8px; flex-wrap: wrap; margin-bottom: 8px; }
.xo-show h4 { margin: 0; font-size: 14px; font-weight: 700; }
.xo-show small { color: var(--body-text-color-subdued); font-size: 12px; width: 100%; }
.xo-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(92px, 1fr)); gap: 8px; }
.xo-card { position: relative; display: flex; flex-direction: column; align-items: stretch; gap: 4px; padding: 6px;
  border-radius: 14px; border: 2px solid var(--border-color-primary); background: var(--block-background-fill);
  cursor: pointer; text-align: left; transition: transform .12s ease, box-shadow .12s ease, border-color .12s; }
.xo-card:hover { transform: translateY(-2px); box-shadow: 0 6px 18px rgba(15, 23, 42, .12); }
.xo-card:focus-visible { outline: 3px solid var(--color-accent); outline-offset: 2px; }
.xo-card img { width: 100%; aspect-ratio: 1; object-fit: cover; border-radius: 10px; display: block; }
.xo-card .xo-name { font-weight: 700; font-size: 13px; line-height: 1.2; padding: 0 2px; }
.xo-card .xo-badge { align-self: flex-start; margin-left: 2px; }
.xo-card.picked { border-color: var(--c); box-shadow: 0 0 0 3px color-mix(in srgb, var(--c) 35%, transparent); }
.xo-slot { position: absolute; top: 10px; right: 10px; width: 24px; height: 24px; border-radius: 50%;
  background: var(--c); color: #fff; font-weight: 800; font-size: 13px; display: grid; place-items: center;
  box-shadow: 0 1px 4px rgba(0, 0, 0, .35); text-shadow: 0 1px 1px rgba(0, 0, 0, .4); }
.xo-badge { display: inline-block; white-space: nowrap; font-size: 9.5px; font-weight: 700; letter-spacing: .02em; text-transform: uppercase;
  padding: 2px 7px; border-radius: 999px; }
.xo-badge.xo-cartoon { background: #fff1d6; color: #9a5b00; }
.xo-badge.xo-live-action { background: #dff1ff; color: #0b5c8f; }
"""


@dataclass
class Chip:
    slot: int
    name: str
    style: str
    avatar: str                 # data URI (cut-out, transparent)
    track: int                  # -1: no track (more characters than tracks)


def chips_html(chips: list[Chip], hints: list[str], motion_label: str) -> str:
    if not chips:
        return ('<div class="xo-chips empty"><p>Pick characters in the library: each gets an identity colour '
                'and a track of the motion here. Drag chips between tracks to decide who performs what.</p></div>')
    by_track = {c.track: c for c in chips if c.track >= 0}
    bench = [c for c in chips if c.track < 0]
    compact = len(hints) >= 4                   # five tracks share one row: names only, hints as tooltips
    parts = [f'<div class="xo-chips{" xo-compact" if compact else ""}" '
             f'data-assignment="{",".join(str(c.track) for c in sorted(chips, key=lambda c: c.slot))}">'
             f'<div class="xo-row" style="--n:{max(1, len(hints))}">']
    for t, hint in enumerate(hints):
        parts.append(f'<div class="xo-track" data-track="{t}" title="Track {t + 1}: {escape(hint)}">'
                     f'<div class="xo-track-head"><b>Track {t + 1}</b><small>{escape(hint)}</small></div>'
                     '<div class="xo-drop">')
        c = by_track.get(t)
        parts.append(_chip(c) if c else '<span class="xo-free">nobody — track not drawn</span>')
        parts.append("</div></div>")
    parts.append("</div>")
    if bench:
        parts.append('<div class="xo-bench"><small>No track left for:</small>' + "".join(_chip(c) for c in bench) + "</div>")
    parts.append(f'<p class="xo-hint">Motion <b>{escape(motion_label)}</b> · drag a chip onto another track '
                 '(or focus it and press ← →) to change who performs which part.</p></div>')
    return "".join(parts)


def _chip(c: Chip) -> str:
    return (f'<div class="xo-chip" data-slot="{c.slot}" tabindex="0" role="button" style="--c:{slot_hex(c.slot)}" '
            f'aria-label="{escape(c.name)}, identity {c.slot + 1} ({COLOR_NAMES[c.slot]}); use arrow keys to move">'
            f'<span class="xo-dot">{c.slot + 1}</span><img src="{c.avatar}" alt="" draggable="false">'
            f'<span class="xo-chip-text"><b>{escape(c.name)}</b><small>{escape(c.style)}</small></span>'
            f'<button type="button" class="xo-x" data-remove="{c.slot}" aria-label="remove {escape(c.name)}">×</button></div>')


CHIPS_JS = r"""
let drag = null;
const trackAt = (x, y) => {
  const el = document.elementFromPoint(x, y);
  const t = el && el.closest('.xo-track');
  return t && element.contains(t) ? t : null;
};
const send = (slot, track) => trigger('reorder', {slot: slot, track: track});
element.addEventListener('click', (e) => {
  const x = e.target.closest('[data-remove]');
  if (x) { e.stopPropagation(); trigger('remove', {slot: parseInt(x.dataset.remove)}); }
});
element.addEventListener('pointerdown', (e) => {
  const chip = e.target.closest('.xo-chip');
  if (!chip || e.target.closest('[data-remove]') || e.button > 0) return;
  e.preventDefault();
  const r = chip.getBoundingClientRect();
  const ghost = chip.cloneNode(true);
  ghost.classList.add('xo-ghost');
  ghost.style.width = r.width + 'px';
  ghost.style.left = r.left + 'px';
  ghost.style.top = r.top + 'px';
  element.appendChild(ghost);   // inside the component so its scoped CSS applies
  chip.classList.add('xo-lifted');
  drag = {chip, ghost, dx: e.clientX - r.left, dy: e.clientY - r.top, over: null};
  const move = (ev) => {
    drag.ghost.style.left = (ev.clientX - drag.dx) + 'px';
    drag.ghost.style.top = (ev.clientY - drag.dy) + 'px';
    const t = trackAt(ev.clientX, ev.clientY);
    if (drag.over && drag.over !== t) drag.over.classList.remove('xo-over');
    if (t) t.classList.add('xo-over');
    drag.over = t;
  };
  const up = (ev) => {
    document.removeEventListener('pointermove', move);
    document.removeEventListener('pointerup', up);
    document.removeEventListener('pointercancel', up);
    const d = drag; drag = null;
    d.ghost.remove();
    d.chip.classList.remove('xo-lifted');
    if (d.over) d.over.classList.remove('xo-over');
    const t = ev.type === 'pointerup' ? trackAt(ev.clientX, ev.clientY) : null;
    if (!t) return;
    const from = d.chip.closest('.xo-track');
    if (from === t) return;
    // show the swap at once; the server confirms it (and re-renders the row and the pose preview)
    const other = t.querySelector('.xo-drop .xo-chip');
    const fromDrop = from ? from.querySelector('.xo-drop') : null;
    t.querySelector('.xo-drop').replaceChildren(d.chip);
    if (fromDrop) fromDrop.replaceChildren(...(other ? [other] : []));
    send(parseInt(d.chip.dataset.slot), parseInt(t.dataset.track));
  };
  document.addEventListener('pointermove', move);
  document.addEventListener('pointerup', up);
  document.addEventListener('pointercancel', up);
});
element.addEventListener('keydown', (e) => {
  const chip = e.target.closest('.xo-chip');
  if (!chip || (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight')) return;
  const from = chip.closest('.xo-track');
  if (!from) return;
  const n = element.querySelectorAll('.xo-track').length;
  const to = parseInt(from.dataset.track) + (e.key === 'ArrowLeft' ? -1 : 1);
  if (to < 0 || to >= n) return;
  e.preventDefault();
  send(parseInt(chip.dataset.slot), to);
});
"""

CHIPS_CSS = r"""
.xo-chips { display: flex; flex-direction: column; gap: 8px; }
.xo-chips.empty p { margin: 0; padding: 18px; border: 2px dashed var(--border-color-primary); border-radius: 14px;
  color: var(--body-text-color-subdued); text-align: center; }
.xo-row { display: grid; grid-template-columns: repeat(var(--n), minmax(0, 1fr)); gap: 10px; }
.xo-track { border-radius: 14px; background: var(--background-fill-secondary); padding: 8px;
  border: 2px dashed transparent; transition: border-color .1s, background .1s; min-width: 0; }
.xo-track.xo-over { border-color: var(--color-accent); background: color-mix(in srgb, var(--color-accent) 10%, transparent); }
.xo-track-head { display: flex; justify-content: space-between; align-items: baseline; gap: 6px; margin-bottom: 6px;
  font-size: 12px; }
.xo-track-head small { color: var(--body-text-color-subdued); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.xo-drop { min-height: 64px; display: flex; align-items: stretch; }
.xo-free { flex: 1; display: grid; place-items: center; font-size: 12px; color: var(--body-text-color-subdued);
  border: 1px dashed var(--border-color-primary); border-radius: 12px; }
.xo-chip { position: relative; flex: 1; min-width: 0; display: flex; align-items: center; gap: 8px; padding: 6px 28px 6px 6px;
  border-radius: 12px; background: var(--block-background-fill); border: 2px solid var(--c);
  box-shadow: 0 2px 0 color-mix(in srgb, var(--c) 60%, transparent); cursor: grab; touch-action: none; user-select: none; }
.xo-chip:focus-visible { outline: 3px solid var(--c); outline-offset: 2px; }
.xo-chip img { height: 52px; width: 40px; object-fit: contain; flex: none; }
.xo-chip-text { display: flex; flex-direction: column; min-width: 0; }
.xo-chip-text b { font-size: 14px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.xo-chip-text small { font-size: 11px; color: var(--body-text-color-subdued); }
.xo-dot { position: absolute; left: -7px; top: -7px; width: 20px; height: 20px; border-radius: 50%; background: var(--c);
  color: #fff; font-size: 11px; font-weight: 800; display: grid; place-items: center; box-shadow: 0 1px 3px rgba(0,0,0,.35); }
.xo-x { all: unset; position: absolute; right: 4px; top: 4px; width: 20px; height: 20px; border-radius: 50%;
  display: grid; place-items: center; color: var(--body-text-color-subdued); font-size: 16px; line-height: 1;
  cursor: pointer; }
.xo-x:hover { background: var(--background-fill-secondary); color: var(--body-text-color); }
.xo-lifted { opacity: .35; }
.xo-ghost { position: fixed; z-index: 9999; pointer-events: none; transform: rotate(-2deg) scale(1.04);
  box-shadow: 0 12px 28px rgba(15, 23, 42, .28); cursor: grabbing; }
.xo-bench { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; padding: 8px; border-radius: 12px;
  background: color-mix(in srgb, #f59e0b 12%, transparent); }
.xo-bench .xo-chip { flex: 0 1 180px; }
.xo-hint { margin: 0; font-size: 12px; color: var(--body-text-color-subdued); }
.xo-compact .xo-row { gap: 6px; }
.xo-compact .xo-track { padding: 6px 4px; }
.xo-compact .xo-track-head small, .xo-compact .xo-chip-text small { display: none; }
.xo-compact .xo-chip { padding: 4px 18px 4px 4px; gap: 4px; }
.xo-compact .xo-chip img { height: 40px; width: 26px; }
.xo-compact .xo-chip-text b { font-size: 12.5px; }
.xo-compact .xo-x { right: 1px; top: 1px; }
.xo-compact .xo-free { font-size: 0; }
.xo-compact .xo-free::after { content: "empty"; font-size: 11px; }
"""
