"""`Idempotency-Key` for POST requests that create things (orders): a retried request gets the
first response and changes nothing; the same key with a different body is refused with 422."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response

from pharmacrm.prepared import execute_prepared

from .models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_KEY = 200


def idempotent(request, endpoint: str, handle: Callable[[], Response]) -> Response:
    """Runs `handle` once per (client, key); without the header it just runs it."""
    key = request.headers.get(HEADER)
    if key is None:
        return handle()
    key = key.strip()
    if not key or len(key) > MAX_KEY:
        return Response(
            {
                "code": "invalid",
                "message": _("The Idempotency-Key header takes 1 to 200 characters."),
                "errors": {HEADER: [{"message": _("1 to 200 characters."), "code": "invalid"}]},
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    client = request.user.client
    digest = hashlib.sha256(
        json.dumps([endpoint, request.data], sort_keys=True, default=str).encode()
    ).hexdigest()
    with transaction.atomic():
        # The row is claimed before the work runs: a concurrent retry waits on it here and then
        # finds the stored response.
        claim = _claim(client.pk, key, endpoint, digest)
        if claim is None:
            seen = IdempotentRequest.objects.select_for_update().get(client=client, key=key)
            return _replay(seen, digest)
        response = handle()
        if response.status_code >= 500:
            raise RuntimeError("not stored: a server error must stay retryable")
        if response.status_code >= 400:
            # A refused request changed nothing: the key stays free for a corrected retry.
            IdempotentRequest.objects.filter(pk=claim).delete()
            return response
        _store(claim, response)
        return response


def _claim(client_id: int, key: str, endpoint: str, digest: str) -> int | None:
    """Inserts the key's row (no response yet) and returns its id; None when the client used
    the key already (after waiting for a concurrent request holding it to finish). One
    statement: INSERT ... ON CONFLICT DO NOTHING RETURNING."""
    q = connection.ops.quote_name
    table = q(IdempotentRequest._meta.db_table)
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f"INSERT INTO {table} ({q('client_id')}, {q('key')}, {q('endpoint')}, "
            f"{q('request_hash')}, {q('status_code')}, {q('response')}, {q('created_at')}) "
            f"VALUES (%s, %s, %s, %s, 0, %s, %s) "
            f"ON CONFLICT ({q('client_id')}, {q('key')}) DO NOTHING RETURNING {q('id')}",
            [
                client_id,
                key,
                endpoint,
                digest,
                "{}",
                connection.ops.adapt_datetimefield_value(timezone.now()),
            ],
        )
        row = cursor.fetchone()
    return row[0] if row is not None else None


def _store(claim: int, response: Response) -> None:
    """The response kept on the claimed row (plain SQL: the ORM's update cost more to build than
    to run, on every order)."""
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            f"UPDATE {q(IdempotentRequest._meta.db_table)} "
            f"SET {q('status_code')} = %s, {q('response')} = %s WHERE {q('id')} = %s",
            [response.status_code, json.dumps(response.data, default=str), claim],
        )


def _replay(seen: IdempotentRequest, digest: str) -> Response:
    if seen.request_hash != digest:
        return Response(
            {
                "code": "idempotency_key_reused",
                "message": _("This Idempotency-Key was used for a different request."),
                "errors": {},
            },
            status=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    response = Response(seen.response, status=seen.status_code)
    response["Idempotent-Replayed"] = "true"
    return response
