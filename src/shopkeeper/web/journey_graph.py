"""A journey drawn as a graph: its steps laid out in layers from the entry down to the end, each
with what it does and how many customers reached it, and each path between them (`Step.targets`)
labelled with its case, variant or timeout. Rendered as SVG by `app/journeys/_graph.html`.

Layers come from the longest path over the forward edges (a loop back through a wait is drawn
up the right-hand side), and each layer is ordered by where its predecessors sit, which keeps
the edges of the usual journey — a chain with a few branches — from crossing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from shopkeeper.journeys import definition as d

ENTRY = "__entry__"
END = "__end__"
W, H = 236, 104
HGAP, VGAP, MARGIN, BACK_ROOM = 36, 62, 16, 90
LINE = 33  # characters that fit a node's line at the graph's font size


@dataclass
class Node:
    key: str
    title: str
    subtitle: str
    kind: str
    x: float = 0.0
    y: float = 0.0
    entered: int | None = None
    lines: list[str] = field(default_factory=list)
    rank: int = 0


@dataclass
class Edge:
    path: str
    label: str
    lx: float
    ly: float
    back: bool


@dataclass
class Graph:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float
    w: int = W
    h: int = H


def span(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _cut(text: str, limit: int = LINE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def trigger_summary(trigger: d.Trigger) -> str:
    if trigger.kind == "event" and trigger.event is not None:
        return f"on {trigger.event.name}" + (" (filtered)" if trigger.event.where else "")
    if trigger.kind in ("segment_entered", "segment_exited"):
        return f"{'entering' if trigger.kind == 'segment_entered' else 'leaving'} {trigger.segment}"
    if trigger.kind == "schedule":
        when = trigger.cron or (trigger.at.strftime("%d %b %Y %H:%M UTC") if trigger.at else "")
        return f"{trigger.segment} at {when}"
    return "by API call"


def step_summary(step: d.Step) -> str:
    cfg = step.config
    if isinstance(cfg, d.Send):
        channel = "auto" if cfg.channel == "auto" else cfg.channel
        return f"send {channel} · {cfg.template}"
    if isinstance(cfg, d.Wait):
        if cfg.duration is not None:
            return f"wait {span(cfg.duration)}"
        if cfg.until_time is not None:
            return f"wait until {cfg.until_time.strftime('%H:%M')} local"
        assert cfg.until_event is not None
        return f"wait for {cfg.until_event.name} ≤ {span(cfg.timeout)}"
    if isinstance(cfg, d.Branch):
        return f"branch · {len(cfg.cases)} case{'s' if len(cfg.cases) != 1 else ''} + else"
    if isinstance(cfg, d.Split):
        total = sum(v.weight for v in cfg.variants)
        return "split · " + " / ".join(f"{v.name} {v.weight / total:.0%}" for v in cfg.variants)
    if isinstance(cfg, d.Holdout):
        return f"holdout {cfg.percent:g}%"
    if isinstance(cfg, d.UpdateTrait):
        return "update " + ", ".join(sorted(cfg.traits))
    if isinstance(cfg, d.Webhook):
        return "webhook"
    if isinstance(cfg, d.CreateConversation):
        return f"hand to {cfg.team or 'an agent'}"
    return "goal reached?"


def _edges_of(step: d.Step) -> list[tuple[str, str]]:
    """(target, label) of each way out of a step."""
    cfg = step.config
    if isinstance(cfg, d.Branch):
        out = []
        for i, case in enumerate(cfg.cases):
            engaged = case.engaged_step is not None
            out.append((case.next, f"{case.engaged_status} {case.engaged_step}" if engaged else f"case {i + 1}"))
        return [*out, (cfg.otherwise, "else")]
    if isinstance(cfg, d.Split):
        return [(v.next, v.name) for v in cfg.variants]
    if isinstance(cfg, d.Wait) and cfg.on_timeout is not None:
        return [(step.next, "event"), (cfg.on_timeout, "timeout")]
    if isinstance(cfg, d.Holdout):
        return [(step.next, "treatment")]
    if isinstance(cfg, d.GoalCheck):
        return [(step.next, "not yet")]
    return [(step.next, "")]


def reached(step: d.Step, outcomes: Mapping[str, int]) -> int:
    """How many times customers arrived at a step, from what the step logged.

    A wait logs "waiting" on arrival (and once more when it moves on); every other step logs one
    outcome per arrival. Exits and conversions that the trigger feed logs at a waiting run's
    step are not arrivals (a goal step's own conversions are).
    """
    if step.type == "wait":
        return int(outcomes.get("waiting", 0))
    ignored = ("exited",) if step.type == "goal" else ("exited", "converted")
    return sum(int(n) for k, n in outcomes.items() if k not in ignored)


def _outcome_lines(step: d.Step, entry: Mapping[str, Any]) -> list[str]:
    messages = entry.get("messages")
    if messages:
        return [
            f"sent {messages.get('sent', 0)} · delivered {messages.get('delivered', 0)}",
            f"opened {messages.get('opened', 0)} · clicked {messages.get('clicked', 0)}",
        ]
    outcomes: Mapping[str, int] = entry.get("outcomes", {})
    shown = {k: v for k, v in outcomes.items() if k not in ("waiting", "sent")}
    if not shown:
        return []
    parts = [f"{k.replace('variant:', '').replace('case:', 'case ')} {v}" for k, v in sorted(shown.items())]
    lines, current = [], ""
    for part in parts:
        candidate = f"{current} · {part}" if current else part
        if len(candidate) > LINE and current:
            lines.append(current)
            current = part
        else:
            current = candidate
    lines.append(current)
    return [_cut(line) for line in lines[:2]]


def _bezier(
    p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float], p3: tuple[float, float], t: float
) -> tuple[float, float]:
    u = 1 - t
    x = u**3 * p0[0] + 3 * u**2 * t * p1[0] + 3 * u * t**2 * p2[0] + t**3 * p3[0]
    y = u**3 * p0[1] + 3 * u**2 * t * p1[1] + 3 * u * t**2 * p2[1] + t**3 * p3[1]
    return x, y


def _centre(nodes: Mapping[str, Node], preds: list[str], rank: int, position: int) -> tuple[float, int]:
    """Where a node's predecessors above it sit, on average: its place in its layer."""
    above = [nodes[p].x for p in preds if nodes[p].rank < rank]
    return (sum(above) / len(above) if above else float("inf"), position)


def layout(definition: d.Definition, steps_stats: Mapping[str, Mapping[str, Any]] | None = None) -> Graph:
    """The graph of a definition; with `steps_stats` (monitor.stats' `steps`) each node's counts."""
    counted = steps_stats is not None
    stats = steps_stats or {}
    nodes: dict[str, Node] = {
        ENTRY: Node(ENTRY, "Entry", _cut(trigger_summary(definition.trigger)), "entry"),
    }
    for step in definition.steps.values():
        nodes[step.id] = Node(step.id, step.id, _cut(step_summary(step)), step.type)
    nodes[END] = Node(END, "End", "", "end")
    out: dict[str, list[tuple[str, str]]] = {ENTRY: [(definition.first, "")], END: []}
    for step in definition.steps.values():
        out[step.id] = [(END if t == d.END else t, label) for t, label in _edges_of(step)]

    # Depth-first from the entry (then any step nothing leads to): back edges close a loop.
    order: list[str] = []
    post: list[str] = []
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()

    def visit(key: str) -> None:
        state[key] = 1
        order.append(key)
        for target, _ in out[key]:
            if state.get(target) == 1:
                back.add((key, target))
            elif target not in state:
                visit(target)
        state[key] = 2
        post.append(key)

    visit(ENTRY)
    for key in nodes:
        if key not in state and key != END:
            visit(key)
    if END not in state:
        state[END] = 2
        order.append(END)
        post.insert(0, END)

    # Longest path over the forward edges, in topological order.
    preds: dict[str, list[str]] = {k: [] for k in nodes}
    for key in reversed(post):
        for target, _ in out[key]:
            if (key, target) in back:
                continue
            preds[target].append(key)
            if target != END:
                nodes[target].rank = max(nodes[target].rank, nodes[key].rank + 1)
    nodes[END].rank = max(n.rank for k, n in nodes.items() if k != END) + 1

    ranks: dict[int, list[str]] = {}
    for key in order:
        ranks.setdefault(nodes[key].rank, []).append(key)
    widest = max(len(keys) for keys in ranks.values())
    inner = widest * W + (widest - 1) * HGAP
    position = {key: i for i, key in enumerate(order)}

    def place(keys: list[str], rank: int) -> None:
        total = len(keys) * W + (len(keys) - 1) * HGAP
        left = MARGIN + (inner - total) / 2
        for i, key in enumerate(keys):
            nodes[key].x = left + i * (W + HGAP)
            nodes[key].y = MARGIN + rank * (H + VGAP)

    for rank in sorted(ranks):
        keys = ranks[rank]
        if rank > 0:
            placed = {k: _centre(nodes, preds[k], rank, position[k]) for k in keys}
            keys.sort(key=placed.__getitem__)
        place(keys, rank)

    # Counts.
    if counted:
        entered = int(stats.get("entry", {}).get("outcomes", {}).get("entered", 0))
        nodes[ENTRY].entered = entered
        nodes[ENTRY].lines = []
        for step in definition.steps.values():
            entry = stats.get(step.id, {})
            nodes[step.id].entered = reached(step, entry.get("outcomes", {}))
            nodes[step.id].lines = _outcome_lines(step, entry)
        nodes[END].entered = int(stats.get(d.END, {}).get("outcomes", {}).get("completed", 0))

    edges: list[Edge] = []
    seen_pairs: dict[tuple[str, str], int] = {}
    back_count = 0
    for key in order:
        for target, label in out[key]:
            s, t = nodes[key], nodes[target]
            n = seen_pairs[(key, target)] = seen_pairs.get((key, target), -1) + 1
            if (key, target) in back or t.rank <= s.rank:
                back_count += 1
                bulge = 40 + 14 * back_count
                p0 = (s.x + W, s.y + H / 2)
                p3 = (t.x + W, t.y + H / 2)
                p1, p2 = (p0[0] + bulge, p0[1]), (p3[0] + bulge, p3[1])
                lx, ly = _bezier(p0, p1, p2, p3, 0.5)
                lx += 4
                is_back = True
            else:
                p0 = (s.x + W / 2, s.y + H)
                p3 = (t.x + W / 2, t.y)
                dy = (p3[1] - p0[1]) / 2
                p1, p2 = (p0[0], p0[1] + dy), (p3[0], p3[1] - dy)
                lx, ly = _bezier(p0, p1, p2, p3, 0.3 if t.rank - s.rank == 1 else 0.15)
                ly += 12 * n
                is_back = False
            edges.append(
                Edge(
                    path="M{:.1f},{:.1f} C{:.1f},{:.1f} {:.1f},{:.1f} {:.1f},{:.1f}".format(*p0, *p1, *p2, *p3),
                    label=label,
                    lx=round(lx + 6, 1),
                    ly=round(ly, 1),
                    back=is_back,
                )
            )
    height = MARGIN * 2 + (nodes[END].rank + 1) * H + nodes[END].rank * VGAP
    width = MARGIN * 2 + inner + (BACK_ROOM + 14 * back_count if back_count else 0)
    return Graph(list(nodes.values()), edges, width, height)
