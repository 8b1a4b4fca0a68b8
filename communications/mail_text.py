"""What a guest wrote in an e-mail reply: quoted text and signatures taken off, HTML made text.

`reply_text` keeps the guest's own lines and drops what mail programs add below
them: `>` quotes, an attribution line and everything after it ("On … wrote:",
"Em … escreveu:", "El … escribió:", also folded over two lines), Outlook's
header block ("From:/De: … Sent:/Enviado: …") or "Original Message" rule,
the `-- ` signature separator (RFC 3676) and "Sent from my phone" lines. A reply
that is nothing but quotes keeps its whole text, so nothing the guest sent is lost.

`html_text` turns an HTML-only e-mail into plain text: scripts, styles and the
head are dropped with their content, tags are removed and entities decoded. The
result is stored as text and escaped on every page like any other message.
"""

from __future__ import annotations

import html
import re

_ATTRIBUTION = re.compile(
    r"^\s*(On|Em|El|Le|Am)\b.{0,300}\b(wrote|escreveu|escribió|escribio|a écrit|schrieb)\s*:\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|De|Von)\s*:\*?\s", re.IGNORECASE)
_OUTLOOK_FIELD = re.compile(
    r"^\s*\*?(Sent|Date|To|Subject|Enviado|Enviada|Data|Para|Assunto|Fecha|Asunto|Cc)\s*:", re.IGNORECASE
)
_ORIGINAL_RULE = re.compile(
    r"^\s*-{2,}\s*(Original Message|Mensagem original|Mensaje original|Forwarded message|"
    r"Mensagem encaminhada|Mensaje reenviado)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_UNDERSCORE_RULE = re.compile(r"^\s*_{10,}\s*$")
_SENT_FROM = re.compile(
    r"^\s*(Sent from my|Get Outlook for|Enviado do meu|Enviado de meu|Enviado desde mi|Enviado de mi)\b",
    re.IGNORECASE,
)
_BLANK_RUNS = re.compile(r"\n{3,}")

_DROPPED_ELEMENTS = re.compile(
    r"<(script|style|head|title|template|noscript)\b[^>]*>.*?(</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL
)
_COMMENT = re.compile(r"<!--.*?(-->|\Z)", re.DOTALL)
_LINE_BREAKS = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h[1-6]|/blockquote)\b[^>]*>", re.IGNORECASE)
_QUOTE_BLOCK = re.compile(r"<blockquote\b[^>]*>.*?(</blockquote\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>?")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


def reply_text(text: str) -> str:
    """The guest's own words of a reply (module rules)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _ends_reply(lines, index):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    reply = _BLANK_RUNS.sub("\n\n", "\n".join(kept)).strip()
    return reply or _BLANK_RUNS.sub("\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def html_text(markup: str) -> str:
    """HTML as the text a reader sees, without scripts, styles or quoted blocks."""
    markup = _COMMENT.sub("", markup)
    markup = _DROPPED_ELEMENTS.sub("", markup)
    markup = _QUOTE_BLOCK.sub("\n", markup)
    markup = _LINE_BREAKS.sub("\n", markup)
    text = html.unescape(_TAG.sub("", markup))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _ends_reply(lines: list[str], index: int) -> bool:
    line = lines[index]
    if line in ("-- ", "--") or _ORIGINAL_RULE.match(line) or _UNDERSCORE_RULE.match(line):
        return True
    if _SENT_FROM.match(line):
        return True
    following = lines[index + 1] if index + 1 < len(lines) else ""
    if _ATTRIBUTION.match(line) or (
        not line.lstrip().startswith(">") and _ATTRIBUTION.match(f"{line} {following}")
        and re.match(r"^\s*(On|Em|El|Le|Am)\b", line, re.IGNORECASE)
    ):
        return True
    if _OUTLOOK_FROM.match(line):
        window = lines[index + 1: index + 5]
        return sum(1 for nearby in window if _OUTLOOK_FIELD.match(nearby)) >= 2
    return False
