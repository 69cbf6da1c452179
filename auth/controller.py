"""Key management over HTTP (the `admin` scope): the same operations as `python -m auth`."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import JSONBody, PathParameter

from auth import store
from auth.access import requires
from auth.store import ApiKeyCreated, ApiKeyRead
from auth.tokens import ADMIN, NAME_PATTERN, SCOPES
from controllers.protocol import error_responses
from db.unit_of_work import UnitOfWork

KeyName = Annotated[str, msgspec.Meta(pattern=NAME_PATTERN.pattern, description="1-64 of A-Z a-z 0-9 _ . -")]
Scope = Literal["read", "write", "admin"]


class ApiKeyCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A key to make: its name and scopes."""

    name: KeyName
    scopes: Annotated[list[Scope], msgspec.Meta(min_length=1, max_length=3)]


class ApiKeysController(Controller):
    path = "/api/v1/api-keys"
    tags = ["API keys"]

    @get(
        "/",
        operation_id="ListApiKeys",
        summary="List API keys (never their tokens)",
        response_description="Every key of the table, revoked ones too, oldest first; never a token.",
        responses=error_responses(),
        **requires(ADMIN),
    )
    async def list_keys(self, work: NamedDependency[UnitOfWork]) -> list[ApiKeyRead]:
        """Every key of the table, revoked ones too, oldest first (keys from API_KEYS are not listed)."""
        return await store.list_keys(await work.connection())

    @post(
        "/",
        operation_id="CreateApiKey",
        summary="Make an API key; its token is in this response only",
        response_description="The key was made: its listing and its token, which is shown this once and never again.",
        responses=error_responses(409),
        **requires(ADMIN),
    )
    async def create_key(
        self, state: State, work: NamedDependency[UnitOfWork], data: JSONBody[ApiKeyCreate]
    ) -> Response[ApiKeyCreated]:
        """Store a key with these scopes; 409 if an active key has this name."""
        scopes = tuple(s for s in SCOPES if s in data.scopes)
        # A second active key of one name is the unique index's 409 (errors.py).
        created = await store.create_key(await work.connection(), data.name, scopes, state.settings.api_key_pepper)
        state.keyring.forget()
        return Response(created, status_code=201)

    @delete(
        "/{name:str}",
        operation_id="RevokeApiKey",
        summary="Revoke an API key",
        response_description="The key as revoked (`revoked_at` set); it stops working within `AUTH_CACHE_SECONDS`.",
        responses=error_responses(404),
        status_code=200,
        **requires(ADMIN),
    )
    async def revoke_key(
        self,
        state: State,
        work: NamedDependency[UnitOfWork],
        name: Annotated[str, PathParameter(description="The key's name or id")],
    ) -> ApiKeyRead:
        """Revoke the active key of this name (or with this id): it stops working at once in this
        process and within AUTH_CACHE_SECONDS in the others."""
        revoked = await store.revoke_key(await work.connection(), name)
        if revoked is None:
            raise NotFoundException(detail=f"no active API key named {name!r}")
        state.keyring.forget()
        return revoked
