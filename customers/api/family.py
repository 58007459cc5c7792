"""A customer's family members: relatives without identifiers of their own."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, generics, serializers, status
from rest_framework.response import Response

from customers.models import Customer, FamilyMember, Sex
from customers.services import family_member_add, family_member_remove
from pharmacrm.api.idempotency import idempotent
from pharmacrm.api.pagination import PagePagination
from pharmacrm.api.permissions import scoped
from pharmacrm.api.schema import ERRORS

from .common import (
    IDEMPOTENCY_KEY,
    NOT_FOUND,
    REPLAYED,
    StrictJSONParser,
    StrictSerializer,
    birth_date_check,
    check_id,
    client_source,
    customer_or_404,
)


class FamilyMemberSerializer(serializers.ModelSerializer):
    class Meta:
        model = FamilyMember
        fields = ("id", "name", "relation", "birth_date", "sex")


class FamilyMemberInputSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200)
    relation = serializers.ChoiceField(choices=FamilyMember.Relation.choices)
    birth_date = serializers.DateField(required=False, allow_null=True)
    sex = serializers.ChoiceField(
        choices=Sex.choices, required=False, allow_blank=True, help_text="F or M"
    )

    def validate_birth_date(self, value):
        return birth_date_check(value)


class FamilyView(generics.GenericAPIView):
    scopes = scoped(GET="customers:read", POST="customers:write")
    serializer_class = FamilyMemberSerializer
    queryset = Customer.objects.none()  # the schema's path ids
    parser_classes = [StrictJSONParser]
    pagination_class = PagePagination

    @extend_schema(
        summary="A customer's family members",
        description="Oldest first, paged (`page`, `page_size` up to 200).",
        responses={200: FamilyMemberSerializer(many=True), **ERRORS, 404: NOT_FOUND},
    )
    def get(self, request, pk: int):
        customer_id = customer_or_404(pk, load=False)
        members = FamilyMember.objects.filter(customer_id=customer_id).order_by("id")
        page = self.paginate_queryset(members)
        return self.get_paginated_response(FamilyMemberSerializer(page, many=True).data)

    @extend_schema(
        summary="Add a family member",
        parameters=[IDEMPOTENCY_KEY],
        request=FamilyMemberInputSerializer,
        responses={201: FamilyMemberSerializer, **ERRORS, 404: NOT_FOUND, 422: REPLAYED},
    )
    def post(self, request, pk: int):
        client_source(request)  # a write needs a channel, even where nothing records it
        customer = customer_or_404(pk)

        def handle() -> Response:
            form = FamilyMemberInputSerializer(data=request.data)
            form.is_valid(raise_exception=True)
            member = family_member_add(customer=customer, **form.validated_data)
            return Response(FamilyMemberSerializer(member).data, status=status.HTTP_201_CREATED)

        return idempotent(request, f"customers/{customer.pk}/family:add", handle)


class FamilyMemberView(generics.GenericAPIView):
    scopes = scoped(DELETE="customers:write")
    serializer_class = FamilyMemberSerializer
    queryset = Customer.objects.none()  # the schema's path ids

    @extend_schema(
        summary="Remove a family member",
        responses={204: None, **ERRORS, 404: NOT_FOUND},
    )
    def delete(self, request, pk: int, member_id: int):
        client_source(request)
        customer = customer_or_404(pk)
        if not family_member_remove(customer=customer, member_id=check_id(member_id)):
            raise exceptions.NotFound(_("This customer has no such family member."))
        return Response(status=status.HTTP_204_NO_CONTENT)
