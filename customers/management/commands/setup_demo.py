"""Prepare the demo: demo accounts for each role and demo data, once.

`make run` calls this every time; a second run finds everything in place and changes nothing.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from customers.models import Customer

# (login, password, group, superuser): demo only, refused when DEBUG is off.
DEMO_ACCOUNTS = [
    ("admin", "admin", None, True),
    ("marketer", "marketer", "Marketers", False),
    ("manager", "manager", "Managers", False),
]


class Command(BaseCommand):
    help = "Create demo accounts (admin, marketer, manager); load demo data into an empty base."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2000, help="demo customers to load")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/admin/", help="where the demo is served"
        )
        parser.add_argument(
            "--force", action="store_true", help="create demo accounts even with DEBUG off"
        )

    def handle(self, *args, customers: int, force: bool, url: str, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "Demo accounts have well-known passwords: refusing with DEBUG off (use --force)."
            )
        created = self._ensure_accounts()
        if Customer.objects.exists():
            self.stdout.write("Demo data already loaded: nothing to add.")
        else:
            call_command("seed_demo", customers=customers, stdout=self.stdout)
        if "recompute_statuses" in get_commands():
            # Statuses and figures for today (the loyalty app's command: a demo without them
            # would show every customer without a status until the first nightly run).
            call_command("recompute_statuses", stdout=self.stdout)
        if "post_purchase_bonuses" in get_commands():
            # The demo purchases' bonuses (the loyalty app's command; posts nothing once done).
            call_command("post_purchase_bonuses", stdout=self.stdout)
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"PharmaCRM demo: {url}"))
        for login, password, group, _superuser in DEMO_ACCOUNTS:
            role = group or "superuser"
            note = " (new)" if login in created else ""
            self.stdout.write(f"  {login:<9} password: {password:<9} {role}{note}")

    @transaction.atomic
    def _ensure_accounts(self) -> set[str]:
        User = get_user_model()
        created = set()
        for login, password, group_name, superuser in DEMO_ACCOUNTS:
            user, was_created = User.objects.get_or_create(
                username=login,
                defaults={"is_staff": True, "is_superuser": superuser},
            )
            if was_created:
                user.set_password(password)
                user.save(update_fields=["password"])
                created.add(login)
            if group_name:
                user.groups.add(Group.objects.get(name=group_name))
        return created
