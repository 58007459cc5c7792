"""factory-boy factories for the customer base."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from customers.models import (
    Consent,
    Customer,
    ExternalId,
    FamilyMember,
    Product,
    Purchase,
    PurchaseLine,
    PurchaseType,
    Reservation,
    Source,
    Store,
)


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"S-{n:03d}")
    name = factory.Sequence(lambda n: f"Аптека №{n}")
    city = "Москва"


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"46{n:011d}")
    name = factory.Sequence(lambda n: f"Препарат {n}")
    inn = "Ибупрофен"
    pack_size = 20


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    phone = factory.Sequence(lambda n: f"+7912{n:07d}")
    email = factory.Sequence(lambda n: f"customer{n}@example.ru")
    card_number = factory.Sequence(lambda n: f"29{n:011d}")
    last_name = "Иванова"
    first_name = "Анна"
    middle_name = "Сергеевна"
    city = "Москва"
    source = Source.POS


class FamilyMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FamilyMember

    customer = factory.SubFactory(CustomerFactory)
    name = "Пётр"
    relation = FamilyMember.Relation.CHILD
    birth_date = dt.date(2015, 3, 1)


class ExternalIdFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExternalId

    customer = factory.SubFactory(CustomerFactory)
    system = ExternalId.System.APP
    external_id = factory.Sequence(lambda n: f"app-{n}")


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Consent

    customer = factory.SubFactory(CustomerFactory)
    channel = "sms"
    granted = True
    source = Source.APP
    occurred_at = factory.LazyFunction(timezone.now)


def _purchase_type():
    return PurchaseType.objects.get_or_create(
        code="retail", defaults={"name": "Розничная продажа"}
    )[0]


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purchase

    source = Source.POS
    store = factory.SubFactory(StoreFactory)
    external_id = factory.Sequence(lambda n: f"{n:06d}")
    customer = factory.SubFactory(CustomerFactory)
    purchased_at = factory.LazyFunction(timezone.now)
    purchase_date = factory.LazyAttribute(lambda o: timezone.localdate(o.purchased_at))
    purchase_type = factory.LazyFunction(_purchase_type)
    status = Purchase.Status.COMPLETED
    total = Decimal("289.00")


class PurchaseLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PurchaseLine

    purchase = factory.SubFactory(PurchaseFactory)
    product = factory.SubFactory(ProductFactory)
    qty = Decimal("1")
    price = Decimal("289.00")
    amount = factory.LazyAttribute(lambda o: (o.qty * o.price).quantize(Decimal("0.01")))


class ReservationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reservation

    customer = factory.SubFactory(CustomerFactory)
    store = factory.SubFactory(StoreFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = Decimal("1")
    pickup_deadline = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=2))


def staff_client(client, group: str):
    """`client` logged in as a new staff user of group `group` ("Marketers", "Managers")."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username=group.lower(), password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    client.user = user
    return client
