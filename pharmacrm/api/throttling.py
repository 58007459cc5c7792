"""Per-client request limits (ApiClient.throttle_rate), counted in the shared cache."""

from rest_framework.throttling import SimpleRateThrottle

from .auth import ClientUser


class ClientRateThrottle(SimpleRateThrottle):
    scope = "client"

    def allow_request(self, request, view):
        user = getattr(request, "user", None)
        if not isinstance(user, ClientUser):
            return True  # unauthenticated requests are refused before they cost anything
        self.rate = user.client.throttle_rate
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_rate(self):
        return None  # set per client in allow_request

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.user.client.pk}
