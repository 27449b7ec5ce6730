"""The manual's reference pages list everything the code offers: every endpoint with
its methods, every management command of the project (every environment variable:
tests/test_settings.py), and quote `make run` as it is."""

import re
import subprocess
from pathlib import Path

from django.apps import apps
from django.core.management import get_commands

from config.api_router import router
from tests.docs.markdown import DOCS, ROOT

ENDPOINTS_PAGE = DOCS / "api" / "endpoints.md"
COMMANDS_PAGE = DOCS / "operators" / "commands.md"
# Commands of the libraries the manual tells operators to run.
LIBRARY_COMMANDS = ("db_worker", "drf_create_token")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _endpoint_rows() -> list[tuple[str, set[str]]]:
    """Return (paths cell, methods) of each row of the endpoints table."""
    rows = []
    for line in ENDPOINTS_PAGE.read_text().splitlines():
        if line.startswith("| `/"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows.append((cells[0], {m for m in METHODS if m in cells[1]}))
    return rows


def _routes():
    """Yield (documented path, action path or "", detail, methods) of every API route."""
    for prefix, viewset, _basename in router.registry:
        path = "/" + re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", prefix) + "/"
        for route in router.get_routes(viewset):
            methods = {m.upper() for m, action in route.mapping.items() if hasattr(viewset, action)}
            if not methods:
                continue
            action = re.sub(r"^\^\{prefix\}(/\{lookup\})?/?|\{trailing_slash\}\$$", "", route.url)
            yield path, action, route.detail, methods - {"HEAD", "OPTIONS"}


def test_the_endpoints_table_lists_every_route_with_its_methods():
    rows = _endpoint_rows()
    assert len(rows) > 20
    missing = []
    for path, action, detail, methods in _routes():
        detail_path = path + ("{id}/" if detail else "")
        matching = [
            row_methods
            for cell, row_methods in rows
            if (f"`{path}" in cell or f"`{detail_path}" in cell)
            and (f"{action}/" in cell if action else f"`{detail_path}`" in cell)
        ]
        documented = set().union(*matching)
        if not methods <= documented:
            where = detail_path + (f"{action}/" if action else "")
            missing.append(f"{where}: {sorted(methods - documented)}")
    assert not missing, f"routes missing from {ENDPOINTS_PAGE.name}:\n" + "\n".join(missing)


def _project_apps() -> set[str]:
    """Return the apps of this checkout (not of the installed libraries)."""
    return {
        config.name
        for config in apps.get_app_configs()
        if Path(config.path).is_relative_to(ROOT) and ".venv" not in Path(config.path).parts
    }


def test_the_commands_page_describes_every_command():
    project = _project_apps()
    assert {"audit", "workflows"} <= project
    commands = [
        name for name, app in get_commands().items() if app in project or name in LIBRARY_COMMANDS
    ]
    assert "backup" in commands
    page = COMMANDS_PAGE.read_text()
    missing = [name for name in commands if f"## `{name}`" not in page]
    assert not missing, f"commands missing from {COMMANDS_PAGE.name}: {missing}"


def test_make_run_prints_the_address_and_logins_the_manual_shows():
    """README.md and Getting started quote what `make run` prints before serving."""
    dry_run = subprocess.run(
        ["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for page in (ROOT / "README.md", DOCS / "getting-started.md"):
        text = page.read_text()
        quoted = text.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
        assert len(quoted) == 2, page
        for line in quoted:
            assert f'echo "{line}"' in dry_run, f"{page.name}: make run does not print {line!r}"


def test_the_front_page_links_to_pages_that_exist():
    """README.md is outside the MkDocs build, so its links are checked here."""
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    assert len(targets) > 20
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
