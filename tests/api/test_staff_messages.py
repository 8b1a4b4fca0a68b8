"""One rule for a message staff send (`services.staff_messages.send_staff_message`):
`POST /communications/send` and the panel's send form refuse the same input, the
API with the service's own words, the panel with its translation of them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, cast

import pytest

from communications.staff_message import BODY_LIMIT, Problem
from communications.templates import TemplateCatalogue
from services.errors import InvalidRequest
from services.staff_messages import StaffMessageRefused, send_staff_message
from tests.api import test_staff_pages
from tests.api.test_reservations import reservation_body
from tests.api.test_staff_pages import HTML, OPS, RES, bearer
from tests.workflows.journeys import end, now

staff_settings = test_staff_pages.staff_settings
web = test_staff_pages.web
CATALOGUE = TemplateCatalogue.load()

# What staff ask (template, context), what is refused, and what the panel says.
REFUSED: list[tuple[str, dict[str, str], str, Problem, str]] = [
    ("no_such_template", {}, "template", Problem.unknown_template, "escolha um modelo da lista"),
    ("free_text", {"body": "x" * (BODY_LIMIT + 1)}, "context.body", Problem.invalid_value,
     f"no máximo {BODY_LIMIT} caracteres"),
    ("free_text", {}, "context.body", Problem.missing_value, "escreva a mensagem"),
    ("free_text", {"body": "Olá", "guest_name": "Someone else"}, "context.guest_name", Problem.journey_key,
     "guest_name: a jornada preenche este valor"),
    ("free_text", {"body": "Olá", "colour": "blue"}, "context.colour", Problem.unknown_key,
     "colour: campo desconhecido"),
    ("upsell_offer", {"upsell_offer": "Not An Offer"}, "context.upsell_offer", Problem.invalid_value,
     "valor inválido: an offer code"),
    ("upsell_offer", {}, "context.upsell_offer", Problem.missing_value, "escolha a oferta"),
]


async def refusal(template: str, context: dict[str, Any], in_reply_to: str | None = None) -> StaffMessageRefused:
    """What the service refuses; nothing is stored or sent before the checks pass."""
    with pytest.raises(StaffMessageRefused) as refused:
        await send_staff_message(
            session=cast(Any, None), client=cast(Any, None), catalogue=CATALOGUE, reservation_id="R1",
            request_id=uuid.uuid4().hex, template=template, context=context, in_reply_to=in_reply_to,
        )
    return refused.value


@pytest.mark.parametrize(("template", "context", "field", "problem", "panel_says"), REFUSED)
async def test_the_service_refuses_naming_the_field_and_the_problem(template, context, field, problem, panel_says):
    refused = await refusal(template, context)
    assert isinstance(refused, InvalidRequest) and refused.status_code == 422
    assert refused.field == field and refused.problem is problem
    assert refused.detail == f"{field}: {refused.reason}"


async def test_an_in_reply_to_that_is_not_one_of_our_ids_is_refused():
    refused = await refusal("free_text", {"body": "Olá"}, in_reply_to="abc")
    assert refused.field == "in_reply_to" and refused.problem is Problem.invalid_value


async def test_the_api_and_the_panel_refuse_the_same_input_with_the_services_words(env, worker, email, web):
    rid = f"R-RULE-{uuid.uuid4().hex[:8]}"
    answers = []
    async with worker():
        put = await web.put(f"/reservations/{rid}", json=reservation_body(await now(env) + timedelta(days=20)),
                            headers=bearer(RES))
        assert put.status_code == 201, put.text
        for template, context, *_ in REFUSED:
            api = await web.post("/communications/send", headers=bearer(OPS), json={
                "reservation_id": rid, "template": template, "context": context})
            panel = await web.post("/guest-experience", headers={**bearer(OPS), **HTML}, data={
                "action": "send", "reservation_id": rid, "template": template, "request_id": uuid.uuid4().hex,
                **context})
            answers.append((api, panel))
        journey = (await web.get(f"/guest-experience/{rid}", headers=bearer(OPS))).json()
        await end(env, rid)

    for (template, context, _, _, panel_says), (api, panel) in zip(REFUSED, answers, strict=True):
        refused = await refusal(template, context)
        assert api.status_code == 422, api.text
        assert api.json() == {"detail": refused.detail}
        assert panel.status_code == 422, panel.text
        assert panel_says in panel.text, (template, context)
    assert [step for step in journey["steps"] if step["kind"] == "manual"] == []
    assert email.sent == []
