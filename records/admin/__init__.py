"""The admin base every domain admin builds on.

- `RecordAdmin` (`base`): history view, record fields read-only, form choices scoped
  to the user's engagements, counts estimated past EXACT_COUNT_LIMIT rows;
  `EngagementListFilter` and `UserListFilter`, the bounded filters of every changelist.
- `ServiceAdminMixin`, `AdminMove`, … (`service_admin`): lifecycle moves as actions
  and buttons, every save and delete through the app's services, refusals as messages.
- `PageExtension`, `register_page_extension` (`extensions`): what higher apps add to
  a lower app's pages (buttons, inlines, sections).

Django's admin autodiscovery imports this module: it imports no model of any app.
"""

from .base import (
    SOFT_DELETE_FIELDS,
    TRACKED_FIELDS,
    EngagementListFilter,
    ReadOnlyInline,
    RecordAdmin,
    UserListFilter,
)
from .extensions import PageExtension, page_extensions, register_page_extension
from .service_admin import (
    BUTTON_STYLE,
    MOVE_DONE,
    NEXT_PARAMETER,
    NOT_SAVED,
    AdminMove,
    NotesForm,
    ReasonForm,
    SectionButton,
    ServiceAdminMixin,
    adopt,
    changed_data,
    form_data,
    move_button,
    move_link,
    next_url,
)

__all__ = [
    "BUTTON_STYLE",
    "MOVE_DONE",
    "NEXT_PARAMETER",
    "NOT_SAVED",
    "SOFT_DELETE_FIELDS",
    "TRACKED_FIELDS",
    "AdminMove",
    "EngagementListFilter",
    "NotesForm",
    "PageExtension",
    "ReadOnlyInline",
    "ReasonForm",
    "RecordAdmin",
    "SectionButton",
    "ServiceAdminMixin",
    "UserListFilter",
    "adopt",
    "changed_data",
    "form_data",
    "move_button",
    "move_link",
    "next_url",
    "page_extensions",
    "register_page_extension",
]
