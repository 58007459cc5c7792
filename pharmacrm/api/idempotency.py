"""`Idempotency-Key` for POST requests that create things (orders): a retried request gets the
first response and changes nothing; the same key with a different body is refused with 422."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.response import Response

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
        seen = IdempotentRequest.objects.select_for_update().filter(client=client, key=key).first()
        if seen is not None:
            return _replay(seen, digest)
        try:
            with transaction.atomic():
                claim = IdempotentRequest.objects.create(
                    client=client,
                    key=key,
                    endpoint=endpoint,
                    request_hash=digest,
                    status_code=0,
                    response={},
                )
        except IntegrityError:
            seen = IdempotentRequest.objects.select_for_update().get(client=client, key=key)
            return _replay(seen, digest)
        response = handle()
        if response.status_code >= 500:
            raise RuntimeError("not stored: a server error must stay retryable")
        if response.status_code >= 400:
            # A refused request changed nothing: the key stays free for a corrected retry.
            claim.delete()
            return response
        claim.status_code = response.status_code
        claim.response = json.loads(json.dumps(response.data, default=str))
        claim.save(update_fields=["status_code", "response"])
        return response


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
