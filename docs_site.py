"""OpenAPI docs pages (Swagger UI, ReDoc, Stoplight Elements) that work without internet access.

Litestar's render plugins load their scripts, styles, fonts and favicon from CDNs by default, which
leaves a blank page on an air-gapped site. Here every asset URL points at ``/_static/...`` routes
served by this service: Swagger UI comes from the ``swagger-ui-bundle-v2`` wheel, ReDoc and Elements
are vendored under ``static/vendor`` (see ``static/vendor/README.md``).

Usage::

    Litestar(route_handlers=[..., *static_routers()], openapi_config=openapi_config(title=..., ...))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import swagger_ui_bundle
from litestar import Litestar, Request, Router
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.datastructures import CacheControlHeader
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import (
    JsonRenderPlugin,
    RedocRenderPlugin,
    StoplightRenderPlugin,
    SwaggerRenderPlugin,
)
from litestar.openapi.spec import Components, RequestBody, Schema
from litestar.routes import BaseRoute, HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler
from litestar.types.empty import Empty
from litestar.typing import FieldDefinition

from dto.examples import EXAMPLES, LIST_EXAMPLES

VENDOR_DIR = Path(__file__).parent / "static" / "vendor"
SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)
STATIC_PREFIX = "/_static"

# The default favicon is a CDN URL; an empty data: URL also stops the browser asking for /favicon.ico.
_FAVICON = "<link rel='icon' href='data:,'>"
# URLs carry no version, so keep the cache short enough that an upgrade shows up within a day.
_CACHE = CacheControlHeader(public=True, max_age=86_400)
_CATCH_ALL = "/{path:str}"


class _DocsRouter(Router):
    """Router for the docs pages that refuses the two routes Litestar adds on its own.

    Litestar 2.25 builds the docs router at ``OpenAPIConfig.path`` and always adds (a) the first
    plugin at the router's ``/`` and (b) a catch-all ``GET /{path:str}`` that answers with an HTML 404.
    Mounted at ``/``, (a) collides with the app's own ``GET /`` (``ImproperlyConfiguredException:
    Handler already registered for path '/'``) and (b) swallows every unknown single-segment path
    (``GET /nope`` -> HTML 404, ``POST /nope`` -> 405) instead of the JSON ``{"status_code", "detail"}``
    error the API promises. A docs prefix such as ``/schema`` would avoid both but move the pages
    to ``/schema/docs`` etc. So the router stays at ``/`` and simply drops those two routes.
    """

    def register(self, value: ControllerRouterHandler) -> list[BaseRoute]:
        if isinstance(value, HTTPRouteHandler):
            if _CATCH_ALL in value.paths:
                return []
            value.paths.discard("/")
            if not value.paths:
                return []
        return super().register(value)


def openapi_config(
    *, title: str, version: str, description: str, components: Components | None = None
) -> OpenAPIConfig:
    """Docs at /docs (Swagger UI), /redoc, /elements and the schema at /openapi.json, all offline."""
    swagger = f"{STATIC_PREFIX}/swagger"
    return OpenAPIConfig(
        title=title,
        version=version,
        description=description,
        components=components or Components(),
        # Routing uses `openapi_router` (mounted at "/"), which makes Litestar ignore `path`; the CLI
        # still reads it to print where the docs live and to hide doc routes in `litestar routes`,
        # where "/" would hide every route.
        path="/docs",
        openapi_router=_DocsRouter(path="/", route_handlers=[], include_in_schema=False),
        render_plugins=[
            # First plugin = the docs root; kept first although _DocsRouter drops that "/" route.
            _Swagger(
                path="/docs",
                favicon=_FAVICON,
                js_url=f"{swagger}/swagger-ui-bundle.js",
                css_url=f"{swagger}/swagger-ui.css",
                standalone_preset_js_url=f"{swagger}/swagger-ui-standalone-preset.js",
            ),
            _Redoc(
                path="/redoc",
                favicon=_FAVICON,
                google_fonts=False,
                js_url=f"{STATIC_PREFIX}/redoc/bundles/redoc.standalone.js",
            ),
            _Elements(
                path="/elements",
                favicon=_FAVICON,
                js_url=f"{STATIC_PREFIX}/elements/web-components.min.js",
                css_url=f"{STATIC_PREFIX}/elements/styles.min.css",
            ),
            _Json(path="/openapi.json", favicon=_FAVICON),
        ],
    )


def static_routers() -> list[Router]:
    """Routers serving the docs pages' scripts and styles under /_static/{swagger,redoc,elements}."""
    sources = {
        "swagger": SWAGGER_DIR,
        "redoc": VENDOR_DIR / "redoc",
        "elements": VENDOR_DIR / "elements",
    }
    return [
        create_static_files_router(
            path=f"{STATIC_PREFIX}/{name}",
            directories=[directory],
            name=f"docs-static-{name}",
            cache_control=_CACHE,
            include_in_schema=False,
        )
        for name, directory in sources.items()
    ]


def add_examples(document: dict[str, Any]) -> dict[str, Any]:
    """Put an example on every request and response body whose type has one in dto/examples.py,
    and drop the body Litestar documents for HEAD responses (they have none), in place.

    Litestar takes examples per error response (controllers/protocol.py) but not for a handler's own
    request and success bodies; the render plugins below call this on the document they serve."""
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _add_example(operation.get("requestBody", {}).get("content", {}))
            for response in operation["responses"].values():
                if method == "head":
                    response.pop("content", None)
                else:
                    _add_example(response.get("content", {}))
    return document


def _add_example(content: dict[str, Any]) -> None:
    for media in content.values():
        if "example" in media or "examples" in media:
            continue
        schema = media.get("schema", {})
        # `X | None` bodies are a oneOf with null
        schema = next((s for s in schema.get("oneOf", []) if "$ref" in s), schema)
        if "$ref" in schema and _component(schema) in EXAMPLES:
            media["example"] = EXAMPLES[_component(schema)]
        elif "$ref" in schema.get("items", {}) and _component(schema["items"]) in EXAMPLES:
            name = _component(schema["items"])
            media["example"] = LIST_EXAMPLES.get(name, [EXAMPLES[name]])


def _component(schema: dict[str, Any]) -> str:
    return str(schema["$ref"]).rsplit("/", 1)[-1]


class _WithExamples:
    """Mixed into a render plugin: completes the (cached) document with examples before rendering it."""

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        rendered: bytes = super().render(request, add_examples(openapi_schema))  # type: ignore[misc]
        return rendered


class _Swagger(_WithExamples, SwaggerRenderPlugin):
    pass


class _Redoc(_WithExamples, RedocRenderPlugin):
    pass


class _Elements(_WithExamples, StoplightRenderPlugin):
    pass


class _Json(_WithExamples, JsonRenderPlugin):
    pass


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's schema for msgspec Structs, plus `additionalProperties: false` for the request
    bodies that refuse unknown fields (`forbid_unknown_fields=True`), so the document says what
    the service enforces. (Litestar keeps its plugin in a private module; `litestar<3` is pinned.)"""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if getattr(field_definition.type_, "__struct_config__", None) is not None and (
            field_definition.type_.__struct_config__.forbid_unknown_fields
        ):
            schema.additional_properties = False
        return schema


def mark_optional_bodies(app: Litestar) -> None:
    """Litestar documents every request body as required; a handler whose `data` has a default
    (POST .../cancel takes an optional reason) gets `required: false` (run once at startup)."""
    document = app.openapi_schema
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or document.paths is None:
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            if data is None or data.default is Empty or not handler.include_in_schema:
                continue
            path_item = document.paths.get(route.path_format or route.path)
            for method in handler.http_methods:
                operation = getattr(path_item, method.lower(), None) if path_item is not None else None
                if operation is not None and isinstance(operation.request_body, RequestBody):
                    operation.request_body.required = False
