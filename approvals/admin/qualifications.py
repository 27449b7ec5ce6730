"""Admin of professional qualifications: certified by certifiers, never by their holder."""

from __future__ import annotations

from django.contrib import admin

from records.admin import (
    RecordAdmin,
    ServiceAdminMixin,
    adopt,
    changed_data,
    form_data,
)

from ..models import ProfessionalQualification
from ..services import (
    QUALIFICATION_FIELDS,
    may_certify,
    qualification_create,
    qualification_update,
)


@admin.register(ProfessionalQualification)
class ProfessionalQualificationAdmin(ServiceAdminMixin, RecordAdmin):
    list_display = ("user", "designation", "issuing_body", "valid_from", "valid_until")
    list_filter = ("designation", "issuing_body")
    search_fields = ("user__username", "user__first_name", "user__last_name", "membership_number")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    ordering = ("user__username", "designation")

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return readonly if obj is None else (*readonly, "user")

    def has_add_permission(self, request):
        """Only certifiers record qualifications (the model's add permission is not enough)."""
        return super().has_add_permission(request) and may_certify(request.user)

    def has_change_permission(self, request, obj=None):
        """Only certifiers change qualifications, and never their own; others see them read-only."""
        if not (super().has_change_permission(request, obj) and may_certify(request.user)):
            return False
        return obj is None or obj.user_id != request.user.pk

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            saved = qualification_create(
                user=form.cleaned_data["user"],
                actor=request.user,
                **form_data(form, QUALIFICATION_FIELDS),
            )
        else:
            data = changed_data(form, QUALIFICATION_FIELDS)
            if not data:
                return
            saved = qualification_update(qualification=obj, actor=request.user, data=data)
        adopt(obj, saved)
