"""Admin for artefacts and the data reliance register, by model family.

- `artefacts`: the artefact pages (upload, new version, download, previews, moves);
- `previews`: the CSV preview of the artefact page;
- `reliance`: the data reliance register (ASOP 23) and the engagement page's section;
- `pages`: what artefacts add to the engagement page.
"""

from .artefacts import (
    ArtefactAdmin,
)
from .pages import (
    ENGAGEMENT_PAGE,
)
from .previews import (
    CSV_PREVIEW_MAX_BYTES,
    PREVIEW_NOT_UTF8,
    csv_preview,
)
from .reliance import (
    DataRelianceAdmin,
    RelianceRow,
    reliance_rows,
)

__all__ = [
    "CSV_PREVIEW_MAX_BYTES",
    "ENGAGEMENT_PAGE",
    "PREVIEW_NOT_UTF8",
    "ArtefactAdmin",
    "DataRelianceAdmin",
    "RelianceRow",
    "csv_preview",
    "reliance_rows",
]
