"""Admin glue for the service layer: lifecycle moves as actions and buttons, refusals as messages.

Every domain admin that changes state mixes in `ServiceAdminMixin`:

- each `AdminMove` becomes a changelist action and, on the change page, a
  button shown only when the move is valid from the object's state;
- moves that need input (notes, a reason, a file) ask for it on an
  intermediate page first;
- a domain error raised by a service (while moving, saving the form or
  deleting) is shown as an admin error message, never a 500; the services run
  in their own transaction (and the admin's), so nothing is half done;
- a move started from another page (a section of the engagement or approval
  page) carries that page as `next`, and returns there.

Admin add / change / delete call the services through `save_model`,
`save_formset` and `delete_model`, which each admin defines. Other apps add moves,
inlines and page sections to an admin through `records.admin.extensions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as confirm_delete_selected
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.backends.utils import csrf_input
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy

from ..exceptions import DomainError
from .extensions import page_extensions

NOT_SAVED = "Nothing was saved: see the error above."
MOVE_DONE = "{label} — {result}{suffix}."
# The page a move returns to when it was started from another page than the object's.
NEXT_PARAMETER = "next"
# Look like the admin's object-tools links (a POST button cannot be a link).
BUTTON_STYLE = (
    "background: var(--object-tools-bg); color: var(--object-tools-fg); border: 0; "
    "border-radius: 15px; padding: 3px 12px; font-size: 0.6875rem; font-weight: 400; "
    "text-transform: uppercase; letter-spacing: 0.5px; cursor: pointer;"
)


class NotesForm(forms.Form):
    """Optional notes recorded with a decision."""

    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)


class ReasonForm(forms.Form):
    """The reason a rejection or revocation needs, and optional notes."""

    reason = forms.CharField(max_length=255, help_text="Recorded on the approval and audit log.")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)


@dataclass(frozen=True)
class AdminMove:
    """A state change offered in the admin, carried out by one service function.

    `service` is called as `service(<object_argument>=obj, actor=user, **form data)`.
    `form` asks for input on an intermediate page first. The button shows when
    `name` is among the object's `available_moves()` (or `available(obj)` says so),
    among the change page's object tools unless `object_tool` is False (a section
    of a page places it itself). `form_for(obj, user)` returns the form for one
    object when its choices depend on them. `report(obj, result)` returns the
    (level, message) said once it succeeded; by default "<label> — <result>: now
    <status>."
    """

    name: str
    label: str
    service: Callable
    form: type[forms.Form] | None = None
    available: Callable | None = None
    bulk: bool = True
    object_tool: bool = True
    report: Callable | None = None
    form_for: Callable | None = None

    def is_available(self, obj) -> bool:
        """Return whether the move may be offered for `obj` in its current state."""
        if self.available is not None:
            return self.available(obj)
        return self.name in obj.available_moves()


class ServiceAdminMixin:
    """Lifecycle moves as admin actions and change-page buttons; service refusals as messages."""

    # The keyword the services take the object by ("engagement", "run", …).
    service_object_argument: str = ""
    service_moves: tuple[AdminMove, ...] = ()
    # The service that deletes (soft-deletes) one object, if deleting goes through one.
    delete_service: Callable | None = None

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        generated = tuple(self._action_for(move) for move in self.service_moves if move.bulk)
        own = tuple(self.actions or ())
        if self.delete_service is not None:
            own = (*own, "delete_selected")
        self.actions = (*own, *generated)

    # --- URLs and views ------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/move/<str:move>/",
                self.admin_site.admin_view(self.move_view),
                name="{}_{}_move".format(*info),
            ),
            *super().get_urls(),
        ]

    def move_view(self, request, object_id, move):
        """Carry out one move on one object (asking for its input first, if it needs any)."""
        admin_move = next((m for m in self.get_service_moves() if m.name == move), None)
        if admin_move is None:
            raise Http404(f"No move “{move}” here.")
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        change_url = next_url(request) or reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=(obj.pk,)
        )
        if admin_move.form is None:
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            self._perform(request, admin_move, obj, {})
            return HttpResponseRedirect(change_url)
        form_class = self.get_move_form(request, admin_move, obj)
        if request.method == "POST":
            form = form_class(request.POST, request.FILES)
            if form.is_valid():
                self._perform(request, admin_move, obj, form.cleaned_data)
                return HttpResponseRedirect(change_url)
        else:
            form = form_class()
        return self._render_move_form(request, admin_move, form, [obj], cancel_url=change_url)

    def get_service_moves(self) -> tuple[AdminMove, ...]:
        """Return the page's moves: its own, and those other apps add (`records.admin.extensions`).

        An added move goes before the own move its extension names, or after them all.
        """
        moves = list(self.service_moves)
        for extension in page_extensions(self.model):
            names = [move.name for move in moves]
            at = names.index(extension.before) if extension.before in names else len(moves)
            moves[at:at] = extension.moves
        return tuple(moves)

    def get_move_form(self, request, move: AdminMove, obj=None) -> type[forms.Form]:
        """Return the form class that asks for `move`'s input (on `obj`; None: in bulk).

        A move's `form_for(obj, user)` offers choices that depend on the object or the
        user (the people who may be designated on this engagement, …); override for more.
        """
        if move.form_for is not None and obj is not None:
            return move.form_for(obj, request.user)
        return move.form

    def get_inlines(self, request, obj):
        """Return the page's inlines, then those other apps add to it."""
        extra = [inline for ext in page_extensions(self.model) for inline in ext.inlines]
        return (*super().get_inlines(request, obj), *extra)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not add:
            for extension in page_extensions(self.model):
                if extension.context is not None:
                    context.update(extension.context(self, request, obj, context))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_move_context(self, request, move: AdminMove, objects) -> dict:
        """Return extra context for the intermediate page of `move` (a warning, …)."""
        return {}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and self.has_change_permission(request, obj):
            extra_context = {
                **(extra_context or {}),
                "service_move_buttons": self._move_buttons(request, obj),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            # The admin's transaction rolled back: show the form again, as submitted.
            self.message_user(request, error.message, messages.ERROR)
            request.service_refusal = error.message
            # An invalid input the service names (InvalidInput.field) is shown next to it.
            request.service_refusal_field = getattr(error, "field", None)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        if getattr(request, "service_refusal", None) is None:
            return form_class

        refusal = request.service_refusal
        field = getattr(request, "service_refusal_field", None)

        class RefusedForm(form_class):
            def clean(self):
                super().clean()
                if field in self.fields:
                    self.add_error(field, refusal)
                raise ValidationError(NOT_SAVED)

        return RefusedForm

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(
                reverse(
                    f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                    args=(unquote(object_id),),
                )
            )

    def get_deleted_objects(self, objs, request):
        if self.delete_service is None:
            return super().get_deleted_objects(objs, request)
        # A soft delete hides only these rows: nothing cascades, so the related rows
        # need no delete permission (Django's collector would demand it).
        objs = list(objs)
        return [str(obj) for obj in objs], {self.opts.verbose_name_plural: len(objs)}, set(), []

    def delete_model(self, request, obj):
        if self.delete_service is None:
            return super().delete_model(request, obj)
        return type(self).delete_service(**{self.service_object_argument: obj}, actor=request.user)

    @admin.action(
        permissions=("delete",), description=gettext_lazy("Delete selected %(verbose_name_plural)s")
    )
    def delete_selected(self, request, queryset):
        """Confirm as Django does, then delete each object through the delete service."""
        if not request.POST.get("post"):
            return confirm_delete_selected(self, request, queryset)
        deleted = self._apply_each(request, queryset, lambda obj: self.delete_model(request, obj))
        if deleted:
            self.message_user(
                request, f"Deleted {deleted} {self._plural(deleted)}.", messages.SUCCESS
            )
        return None

    # --- actions -------------------------------------------------------------------------

    def _action_for(self, move: AdminMove):
        def action(modeladmin, request, queryset):
            return modeladmin._bulk_move(request, queryset, move)

        action.__name__ = f"move_{move.name}"
        return admin.action(
            action,
            permissions=("change",),
            description=f"{move.label} selected %(verbose_name_plural)s",
        )

    def _bulk_move(self, request, queryset, move: AdminMove):
        data = {}
        if move.form is not None:
            form_class = self.get_move_form(request, move)
            form = form_class(request.POST) if "apply" in request.POST else form_class()
            if not form.is_bound or not form.is_valid():
                return self._render_move_form(request, move, form, list(queryset), bulk=True)
            data = form.cleaned_data
        done = self._apply_each(
            request, queryset, lambda obj: self._call_service(move, obj, request.user, data)
        )
        if done:
            self.message_user(
                request, f"{move.label}: done for {done} {self._plural(done)}.", messages.SUCCESS
            )
        return None

    # --- helpers -------------------------------------------------------------------------

    def _call_service(self, move: AdminMove, obj, actor, data):
        return move.service(**{self.service_object_argument: obj}, actor=actor, **data)

    def _perform(self, request, move: AdminMove, obj, data) -> bool:
        try:
            result = self._call_service(move, obj, request.user, data)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return False
        if move.report is not None:
            level, message = move.report(obj, result)
        else:
            status = getattr(result, "status", None)
            suffix = f": now {status}" if status else ""
            level = messages.SUCCESS
            message = MOVE_DONE.format(label=move.label, result=result, suffix=suffix)
        self.message_user(request, message, level)
        return True

    def _apply_each(self, request, queryset, call) -> int:
        """Call `call(obj)` for each object; report each refusal; return how many succeeded."""
        done = 0
        for obj in queryset:
            try:
                call(obj)
            except DomainError as error:
                self.message_user(request, f"{obj}: {error.message}", messages.ERROR)
            else:
                done += 1
        return done

    def move_offered(self, request, move: AdminMove, obj) -> bool:
        """Return whether the change page offers `move` on `obj` to this viewer.

        All available moves by default; an admin whose services would refuse the
        viewer says so here, so a button is never shown to someone who may not press it.
        """
        return True

    def move_url(self, obj, move: str) -> str:
        """Return the URL of `move` on `obj` (its intermediate page, or where to POST)."""
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_move", args=(obj.pk, move)
        )

    def _move_buttons(self, request, obj):
        buttons = []
        for move in self.get_service_moves():
            if not move.object_tool or not move.is_available(obj):
                continue
            if not self.move_offered(request, move, obj):
                continue
            url = self.move_url(obj, move.name)
            if move.form is None:
                buttons.append(format_html("<li>{}</li>", move_button(request, url, move)))
            else:
                buttons.append(format_html('<li><a href="{}">{}…</a></li>', url, move.label))
        return format_html_join("", "{}", ((button,) for button in buttons))

    def _render_move_form(self, request, move, form, objects, *, bulk=False, cancel_url=None):
        opts = self.opts
        context = {
            **self.admin_site.each_context(request),
            "title": f"{move.label}: {self._describe(objects)}",
            "opts": opts,
            "app_label": opts.app_label,
            "move": move,
            "form": form,
            "objects": objects,
            "bulk": bulk,
            "action_name": f"move_{move.name}",
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "cancel_url": cancel_url
            or reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
            "media": self.media + form.media,
            **self.get_move_context(request, move, objects),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            [
                f"admin/{opts.app_label}/{opts.model_name}/move_form.html",
                f"admin/{opts.app_label}/move_form.html",
                "admin/move_form.html",
            ],
            context,
        )

    def _describe(self, objects) -> str:
        if len(objects) == 1:
            return str(objects[0])
        return f"{len(objects)} {self._plural(len(objects))}"

    def _plural(self, count: int) -> str:
        opts = self.opts
        return str(opts.verbose_name if count == 1 else opts.verbose_name_plural)


@dataclass(frozen=True)
class SectionButton:
    """A move without input offered as a button in a section of another page's form.

    The admin's change form encloses its sections, and forms do not nest: the button
    names (`form` attribute) a small form of its own, rendered after the change form
    (`admin/includes/section_move_forms.html`), which posts to the move and returns to
    `next_page`. Pressing Enter in the change form still saves it.
    """

    form_id: str
    url: str
    label: str
    next_page: str = ""


def move_button(request, url: str, move: AdminMove, *, style: str = BUTTON_STYLE):
    """Return a POST button (in its own form) that carries out `move`, which needs no input."""
    return format_html(
        '<form method="post" action="{}" class="service-move">{}'
        '<button type="submit" name="move" value="{}" style="{}">{}</button></form>',
        url,
        csrf_input(request),
        move.name,
        style,
        move.label,
    )


def move_link(url: str, *, next_page: str = "") -> str:
    """Return `url` (a move's intermediate page) returning to `next_page` afterwards."""
    return f"{url}?{urlencode({NEXT_PARAMETER: next_page})}" if next_page else url


def next_url(request) -> str:
    """Return the page a move should return to (`next`, if it is on this site), or ""."""
    candidate = request.POST.get(NEXT_PARAMETER) or request.GET.get(NEXT_PARAMETER) or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def form_data(form, fields) -> dict:
    """Return the submitted values of `fields` that the form holds."""
    return {name: form.cleaned_data[name] for name in fields if name in form.cleaned_data}


def changed_data(form, fields) -> dict:
    """Return the submitted values of `fields` that the user changed."""
    return {name: form.cleaned_data[name] for name in form.changed_data if name in fields}


def adopt(target, saved) -> None:
    """Make the admin's form object `target` the row a service saved, so the admin carries on."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db
