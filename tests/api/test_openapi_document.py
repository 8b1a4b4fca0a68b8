"""The OpenAPI document a newcomer reads at /docs (issue 11, item 7): the API key as an
HTTP bearer scheme on every route that needs one, the release's version, and bodies
with descriptions and examples that are themselves valid."""

from __future__ import annotations

from importlib.metadata import version

from api.routes.reservations import PmsEventIn
from guest_journey.reservations import ReservationIn


async def test_every_keyed_route_declares_the_bearer_scheme_and_the_version_is_the_release(api):
    document = (await api.get("/openapi.json")).json()

    assert document["info"]["version"] == version("guest-journey")
    assert document["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["apiKey"][
            "description"],
    }
    keyed = {path: operations for path, operations in document["paths"].items()
             if path.startswith(("/reservations", "/communications", "/guest-experience/"))}
    assert keyed
    for path, operations in keyed.items():
        for method, operation in operations.items():
            assert operation.get("security") == [{"apiKey": []}], f"{method.upper()} {path}"
    for unkeyed in ("/guest/{token}/unsubscribe", "/webhooks/whatsapp"):  # a signed link, Meta's signature
        for operation in document["paths"][unkeyed].values():
            assert "security" not in operation, unkeyed


async def test_the_reservation_and_event_examples_are_valid_bodies(api):
    schemas = (await api.get("/openapi.json")).json()["components"]["schemas"]

    for model in (ReservationIn, PmsEventIn):
        examples = schemas[model.__name__]["examples"]
        assert examples
        for example in examples:
            model.model_validate(example)
    assert schemas["ReservationIn"]["properties"]["departure"]["description"]


async def test_a_wrong_method_is_405_naming_every_method_the_path_takes(api):
    answers = {
        path: await api.request(method, path)
        for method, path in (("PATCH", "/reservations/R1"), ("DELETE", "/communications/templates"))
    }

    assert {path: (answer.status_code, answer.headers.get("allow")) for path, answer in answers.items()} == {
        "/reservations/R1": (405, "DELETE, PUT"),
        "/communications/templates": (405, "GET, HEAD"),
    }


async def test_a_snapshot_score_must_be_a_number_not_a_boolean(api):
    answer = await api.post("/guest-experience/journey", json={
        "mode": "sync", "snapshots": [{"reservation_id": "R1", "nps": False}],
    })

    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][-1] == "nps"
