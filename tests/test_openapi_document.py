"""The OpenAPI document teaches: every response has a sentence of its own, every body an example
that decodes into its type, and every error status its documented body."""

from __future__ import annotations

import http
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from app import create_app
from auth import controller as auth_controller
from auth import store as auth_store
from config import Settings
from dto import errors, events, runs, stats, steps, system, timeline
from dto.examples import ERROR_EXAMPLES, EXAMPLES

METHODS = ("get", "put", "post", "delete", "patch", "head")
# What Litestar writes when a handler gives no response description: http.HTTPStatus phrases.
STOCK = {s.description for s in http.HTTPStatus} | {s.phrase for s in http.HTTPStatus}
STRUCTS: dict[str, type] = {
    name: obj
    for module in (errors, events, runs, stats, steps, system, timeline, auth_store, auth_controller)
    for name, obj in vars(module).items()
    if isinstance(obj, type) and issubclass(obj, msgspec.Struct)
}


@pytest.fixture(scope="module")
def document(settings: Settings) -> dict[str, Any]:
    # The document needs no database; the app is not started.
    with TestClient(app=create_app(settings)) as client:
        body: dict[str, Any] = client.get("/openapi.json").json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_every_response_has_its_own_sentence(document: dict[str, Any]) -> None:
    missing = [
        (method, path, code, response.get("description"))
        for method, path, op in operations(document)
        for code, response in op["responses"].items()
        if not response.get("description") or response["description"].rstrip(".") in STOCK
    ]
    assert missing == []


def test_every_body_has_an_example_of_its_type(document: dict[str, Any]) -> None:
    lacking, wrong = [], []
    for method, path, op in operations(document):
        bodies = [("request", op["requestBody"])] if "requestBody" in op else []
        bodies += list(op["responses"].items())
        for where, body in bodies:
            for media_type, media in body.get("content", {}).items():
                examples = (
                    [media["example"]]
                    if "example" in media
                    else [e["value"] for e in media.get("examples", {}).values()]
                )
                if not examples:
                    lacking.append((method, path, where, media_type))
                if media_type == "text/event-stream":  # each message's data is an Event
                    for example in examples:
                        data = [line[6:] for line in example.splitlines() if line.startswith("data: ")]
                        if not data:
                            wrong.append((method, path, where, "a stream example without events"))
                        for item in data:
                            msgspec.json.decode(item, type=events.Event)
                    continue
                schema = media.get("schema", {})
                schema = next((s for s in schema.get("oneOf", []) if "$ref" in s), schema)
                is_list = "$ref" not in schema and "$ref" in schema.get("items", {})
                ref = schema["items"]["$ref"] if is_list else schema.get("$ref", "")
                struct = STRUCTS.get(ref.rsplit("/", 1)[-1])
                for example in examples:
                    if struct is None:
                        wrong.append((method, path, where, "no type to check the example against"))
                        continue
                    try:
                        msgspec.convert(example, list[struct] if is_list else struct, strict=False)  # type: ignore[valid-type]
                    except msgspec.ValidationError as exc:
                        wrong.append((method, path, where, str(exc)))
    assert lacking == []
    assert wrong == []


def test_error_bodies_are_documented_per_status(document: dict[str, Any]) -> None:
    for method, path, op in operations(document):
        for code, response in op["responses"].items():
            if int(code) < 400 or method == "HEAD":
                continue
            media = response["content"]["application/json"]
            if (method, path, code) == ("GET", "/health/ready", "503"):  # the checks, with `detail`
                assert media["schema"] == {"$ref": "#/components/schemas/Readiness"}
                continue
            assert media["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, code)
            values = [e["value"] for e in media["examples"].values()]
            assert values == [ERROR_EXAMPLES[int(code)]], (method, path, code)
            assert values[0]["status_code"] == int(code)


def test_head_responses_have_no_body(document: dict[str, Any]) -> None:
    heads = [(path, op) for method, path, op in operations(document) if method == "HEAD"]
    assert heads
    for _, op in heads:
        assert all("content" not in response for response in op["responses"].values())


def test_every_example_type_is_a_component(document: dict[str, Any]) -> None:
    assert set(EXAMPLES) <= set(document["components"]["schemas"])


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_pages_show_the_examples(client: TestClient[Litestar], page: str) -> None:
    # Swagger UI and ReDoc embed the document in the page; Elements loads /openapi.json (walked above).
    assert EXAMPLES["RunRead"]["file_path"] in client.get(page).text
