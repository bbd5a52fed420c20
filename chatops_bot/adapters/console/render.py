"""Plain-text rendering of a `Reply` for a terminal."""

from __future__ import annotations

from commands.reply import Reply, RequestCard

BUTTON_LABELS = {"approve": "[Approve]", "deny": "[Deny]", "extend": "[Extend]"}


def render(reply: Reply) -> str:
    lines = [reply.text]
    for card in reply.cards:
        lines += _card(card)
    return "\n".join(lines)


def _card(card: RequestCard) -> list[str]:
    width = max(len(f.label) for f in card.fields) if card.fields else 0
    lines = ["", f"  ┌ {card.title}"]
    lines += [f"  │ {f.label.ljust(width)}  {f.value}" + (f" ({f.url})" if f.url else "") for f in card.fields]
    if card.footer:
        lines.append(f"  │ {card.footer}")
    if card.web_url:
        lines.append(f"  │ {card.web_url}")
    if card.actions:
        lines.append("  │ " + " ".join(BUTTON_LABELS[a.value] for a in card.actions))
    lines.append("  └")
    return lines
