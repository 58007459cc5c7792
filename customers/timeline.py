"""The customer timeline: every interaction with a customer, in date order, from every app.

Each app registers a provider in its AppConfig.ready(); the timeline never needs editing when a
new kind of event appears (bonuses, status changes, messages, calls, ...). A provider returns the
customer's newest events, at most `limit` of them, newest first.
"""

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Customer


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    kind: str  # machine-readable: "purchase", "consent", "reservation", ...
    title: str  # one line for people, already translated
    detail: str = ""
    url: str = ""  # where to look closer (admin page), if anywhere


TimelineProvider = Callable[["Customer", int], Iterable[TimelineEvent]]

_providers: dict[str, TimelineProvider] = {}


def register_timeline_provider(name: str) -> Callable[[TimelineProvider], TimelineProvider]:
    """Decorator: `@register_timeline_provider("purchases")` adds a source of events."""

    def decorator(provider: TimelineProvider) -> TimelineProvider:
        _providers[name] = provider
        return provider

    return decorator


def timeline_providers() -> dict[str, TimelineProvider]:
    return dict(_providers)


def customer_timeline(*, customer: "Customer", limit: int = 100) -> list[TimelineEvent]:
    """The customer's newest `limit` events from all providers, newest first."""
    streams = [
        sorted(provider(customer, limit), key=lambda e: e.at, reverse=True)
        for provider in _providers.values()
    ]
    merged = heapq.merge(*streams, key=lambda e: e.at, reverse=True)
    return list(itertools.islice(merged, limit))
