"""`manage.py create_api_client NAME --scopes customers:read ... [--kind app]`: prints the token
once."""

from django.core.management.base import BaseCommand, CommandError

from pharmacrm.api.models import DEFAULT_RATE, ApiClient, Scope
from pharmacrm.api.throttling import parse_rate


class Command(BaseCommand):
    help = (
        "Create an API client (an integration: mobile app, website, POS, contact centre) with "
        "the given scopes and print its token. The token is shown only now; the database keeps "
        f"its SHA-256 hash. Scopes: {', '.join(Scope.values)}."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scopes", nargs="+", required=True, metavar="SCOPE")
        parser.add_argument("--kind", choices=ApiClient.Kind.values, default=ApiClient.Kind.OTHER)
        parser.add_argument(
            "--rate", default=DEFAULT_RATE, help=f"request limit, e.g. {DEFAULT_RATE}"
        )

    def handle(self, *args, name: str, scopes: list[str], kind: str, rate: str, **options):
        unknown = sorted(set(scopes) - set(Scope.values))
        if unknown:
            raise CommandError(
                f"Unknown scopes: {', '.join(unknown)}. Known: {', '.join(Scope.values)}."
            )
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(f"An API client named “{name}” exists already.")
        client = ApiClient(name=name, kind=kind, scopes=sorted(set(scopes)), throttle_rate=rate)
        try:
            _check_rate(rate)
        except ValueError as error:
            raise CommandError(str(error)) from None
        key = client.new_key()
        client.save()
        self.stdout.write(key)
        self.stderr.write(
            f"API client “{name}” created with scopes {', '.join(client.scopes)}. The token "
            "above is shown only now: send it as “Authorization: Token <token>”."
        )


def _check_rate(rate: str) -> None:
    try:
        parse_rate(rate)
    except ValueError:
        raise ValueError(f"--rate: “{rate}” is not a rate like {DEFAULT_RATE}.") from None
