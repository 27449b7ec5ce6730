"""Read the manual's Markdown into fenced blocks and the markers written before them.

The convention (also explained to writers in docs/examples.md):

- A fenced block's language says what it is. ``sh``/``bash``/``console`` blocks hold
  commands, ``http`` blocks a request and its response, ``crontab`` blocks schedule
  lines; these are run by tests/docs/test_examples.py. ``python`` blocks have their
  imports checked, ``text`` blocks that start with ``usage: manage.py`` have their
  options checked against the command. Anything else (json, yaml, csv, ...) is data.
- An HTML comment on the lines just before a block (blank lines may separate them)
  is a marker for that block:
  ``<!-- not-run: reason -->`` the block cannot run in a test, and says why;
  ``<!-- run-by-ci -->`` every command in it is one that .ci/run runs;
  ``<!-- example-setup -->`` the block that defines the variables every page's
  examples use (one, in docs/examples.md);
  ``<!-- example: NAME -->`` the next block belongs to another test's convention
  (e.g. ``reserve-run`` in docs/actuaries/reserving-methods.md) and is left to it; text may
  stand between this marker and its block.
"""

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
MARKER = re.compile(r"^\s*<!--\s*(?P<name>[a-z][a-z-]*)\s*(?::\s*(?P<value>.*?))?\s*-->\s*$")
KNOWN_MARKERS = ("not-run", "run-by-ci", "example-setup", "example")

STRAY_MARKER = "{where}: the marker <!-- {name} --> is not followed by a fenced block"
EMPTY_REASON = "{where}: say why the block cannot run: <!-- not-run: reason -->"
UNCLOSED_FENCE = "{where}: the fenced block opened here is never closed"


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page, with the marker written before it (if any)."""

    path: Path
    line: int  # line number of the opening fence, 1-based
    language: str
    lines: tuple[str, ...]
    marker: str | None = None
    marker_value: str | None = None

    @property
    def where(self) -> str:
        """Return `docs/page.md:12`, the place to look when the block fails."""
        return _where(self.path, self.line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def manual_pages() -> list[Path]:
    """Return README.md and every Markdown page under docs/, in a stable order."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def read_blocks(path: Path) -> list[Block]:
    """Return the fenced blocks of `path` with their markers; raise ValueError on misuse."""
    source = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: tuple[str, str | None, int] | None = None  # (name, value, line) of a marker
    index = 0
    while index < len(source):
        line = source[index]
        marker = MARKER.match(line)
        fence = FENCE.match(line)
        if marker and marker["name"] in KNOWN_MARKERS:
            if pending is not None and pending[0] != "example":
                raise ValueError(_stray(path, pending))
            pending = (marker["name"], marker["value"], index + 1)
        elif fence:
            indent, closing = fence["indent"], fence["fence"]
            body: list[str] = []
            end = index + 1
            while end < len(source) and not _closes(source[end], closing):
                body.append(_dedent(source[end], indent))
                end += 1
            if end == len(source):
                raise ValueError(UNCLOSED_FENCE.format(where=_where(path, index + 1)))
            name, value = (pending[0], pending[1]) if pending else (None, None)
            if name == "not-run" and not value:
                raise ValueError(EMPTY_REASON.format(where=_where(path, pending[2])))
            language = fence["info"].strip().split(" ")[0].lower() if fence["info"] else ""
            blocks.append(Block(path, index + 1, language, tuple(body), name, value))
            pending = None
            index = end
        elif line.strip() and pending is not None and pending[0] != "example":
            raise ValueError(_stray(path, pending))
        index += 1
    if pending is not None and pending[0] != "example":
        raise ValueError(_stray(path, pending))
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def _dedent(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip()


def _where(path: Path, line: int) -> str:
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{shown}:{line}"


def _stray(path: Path, pending: tuple[str, str | None, int]) -> str:
    return STRAY_MARKER.format(where=_where(path, pending[2]), name=pending[0])
