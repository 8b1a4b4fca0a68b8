"""Words staff read on the pages (pt-BR, as the runbook): stages, statuses,
channels, templates and steps by their codes. Unknown codes are shown as they are.
Offers have the names guests read (`guest_journey.languages.OFFER_NAMES`)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent

from guest_journey.languages import offer_names

LANGUAGE = "pt-BR"
LOCALE = "pt_BR"

STAGES = {
    "pre_arrival": "Pré-chegada",
    "in_stay": "Hospedado",
    "post_stay": "Pós-estadia",
    "completed": "Concluída",
    "cancelled": "Cancelada",
    "no_show": "No-show",
}
STEP_STATUSES = {
    "planned": "Planejada",
    "due": "Em envio",
    "done": "Concluída",
    "skipped": "Pulada",
    "failed": "Falhou",
    "in_doubt": "Em dúvida",
    "cancelled": "Cancelada",
}
MESSAGE_STATUSES = {
    "queued": "Na fila",
    "sending": "Enviando",
    "in_doubt": "Em dúvida",
    "sent": "Enviada",
    "delivered": "Entregue",
    "read": "Lida",
    "failed": "Falhou",
    "received": "Recebida",
}
DIRECTIONS = {"outbound": "Hotel → hóspede", "inbound": "Hóspede → hotel"}
CHANNELS = {"email": "E-mail", "whatsapp": "WhatsApp", "webchat": "Chat web"}
TEMPLATES = {
    "checkin_invitation": "Convite de check-in",
    "checkin_reminder": "Lembrete de check-in",
    "upsell_offer": "Oferta",
    "upsell_follow_up": "Lembrete de oferta",
    "guest_post_stay_feedback": "Pedido de avaliação",
    "feedback_reminder": "Lembrete de avaliação",
    "free_text": "Texto livre",
}
STEP_KINDS = {
    **TEMPLATES,
    "upsell": "Oferta",
    "close": "Encerramento da jornada",
    "manual": "Mensagem da equipe",
}
UPSELL_STATUSES = {
    "planned": "Planejada",
    "offered": "Ofertada",
    "accepted": "Aceita",
    "declined": "Recusada",
    "skipped": "Pulada",
}
CHECKIN_STATUSES = {"pending": "Pendente", "completed": "Concluído"}
FEEDBACK_STATUSES = {"pending": "Pendente", "requested": "Solicitada", "received": "Recebida"}
OFFERS = offer_names(LANGUAGE)


def label(words: dict[str, str], code: str | None) -> str:
    if code is None:
        return "—"
    return words.get(code, code.replace("_", " "))


def offer_label(offer: str | None) -> str:
    return label(OFFERS, offer)


def step_label(key: str, kind: str, template: str | None = None) -> str:
    """`upsell:room_upgrade` -> "Oferta: Upgrade de quarto"; `checkin_reminder:PT24H` ->
    "Lembrete de check-in (24 h antes)"; a staff message names its template."""
    name = label(STEP_KINDS, kind)
    _, _, detail = key.partition(":")
    if kind == "manual":
        return f"{name}: {label(TEMPLATES, template)}" if template else name
    if not detail:
        return name
    if kind in ("upsell", "upsell_follow_up"):
        return f"{name}: {offer_label(detail)}"
    if kind == "checkin_reminder":
        return f"{name} ({iso_duration(detail)} antes)"
    return f"{name} ({detail})"


def iso_duration(text: str) -> str:
    """`PT24H` -> "24 h", `P2D` -> "2 d", `PT90M` -> "90 min"; other text unchanged."""
    if not text.startswith("P"):
        return text
    parts = []
    number = ""
    in_time = False
    units = {"D": "d", "W": "sem", "H": "h", "S": "s"}
    for char in text[1:]:
        if char == "T":
            in_time = True
        elif char.isdigit() or char == ".":
            number += char
        elif number:
            unit = ("min" if in_time else "mês") if char == "M" else units.get(char, char)
            parts.append(f"{number} {unit}")
            number = ""
    return " ".join(parts) or text


def when(moment: datetime | None, zone: ZoneInfo) -> str:
    """A moment in the hotel's time: `20/03/2025 15:00`."""
    if moment is None:
        return "—"
    return moment.astimezone(zone).strftime("%d/%m/%Y %H:%M")


def decimal(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    return format_decimal(round(value, digits), format=f"#,##0.{'0' * digits}", locale=LOCALE)


def percent(fraction: float | None, digits: int = 1) -> str:
    if fraction is None:
        return "—"
    return format_percent(fraction, format=f"#,##0.{'0' * digits} %", locale=LOCALE)


def signed(value: float | None, digits: int = 0) -> str:
    """An NPS: `+33`, `-12`, `0`."""
    if value is None:
        return "—"
    rounded = round(value, digits)
    text = decimal(abs(rounded), digits) if digits else f"{abs(rounded):.0f}"
    if rounded > 0:
        return f"+{text}"
    return f"-{text}" if rounded < 0 else text
