"""The structure holds: one-way layers, every app placed, every hook provided, short modules.

See docs/developers/architecture.md. CI's lint stage runs `lint-imports` too; these tests make
a broken contract, an app left out of the layers or a hook nobody provides fail the
suite as well, with a message that says what to do.
"""

import ast
import configparser
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

from django.apps import apps
from django.conf import settings

from records.hooks import Hook, HookList

REPO_ROOT = Path(settings.BASE_DIR)
CONTRACTS = REPO_ROOT / ".importlinter"
# A module reads in one sitting; a longer one says why in its docstring.
MAX_MODULE_LINES = 600
LONG_MODULE_REASON = re.compile(r"longer than \d+ lines because", re.IGNORECASE)
NOT_CHECKED_FOR_LENGTH = ()


def _project_apps() -> list[str]:
    """Return the names of this project's apps (top-level packages next to manage.py)."""
    return sorted(
        config.name
        for config in apps.get_app_configs()
        if Path(config.path).parent == REPO_ROOT.resolve()
    )


def _contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(CONTRACTS)
    return parser


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def test_every_project_app_is_a_root_package_placed_in_a_layer():
    contracts = _contracts()
    roots = set(_lines(contracts["importlinter"]["root_packages"]))
    layered = {
        name.strip().strip("()")
        for layer in _lines(contracts["importlinter:contract:layers"]["layers"])
        for name in re.split(r"[|:]", layer)
    }
    for app in [*_project_apps(), "config"]:
        assert app in roots, f"add {app} to root_packages in .importlinter"
        assert app in layered, f"place {app} in a layer of the layers contract (.importlinter)"


def test_imports_keep_the_contracts():
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--no-logo"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_is_longer_than_a_sitting_without_saying_why():
    too_long = []
    for app in [*_project_apps(), "config"]:
        for path in sorted((REPO_ROOT / app).rglob("*.py")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if "/migrations/" in relative or relative.startswith(NOT_CHECKED_FOR_LENGTH):
                continue
            text = path.read_text(encoding="utf-8")
            if text.count("\n") <= MAX_MODULE_LINES:
                continue
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if not LONG_MODULE_REASON.search(docstring):
                too_long.append(f"{relative} ({text.count(chr(10))} lines)")
    assert not too_long, (
        f"split by concern, or say in the docstring why it is longer than "
        f"{MAX_MODULE_LINES} lines: {', '.join(too_long)}"
    )


def _project_hooks():
    """Yield (where, hook) for every Hook and HookList a project module declares."""
    for app in _project_apps():
        package = importlib.import_module(app)
        modules = [package]
        if hasattr(package, "__path__"):
            for info in pkgutil.walk_packages(package.__path__, prefix=f"{app}."):
                if ".migrations" in info.name or ".management" in info.name:
                    continue
                modules.append(importlib.import_module(info.name))
        for module in modules:
            for name, value in vars(module).items():
                if isinstance(value, Hook | HookList) and value.name and not name.startswith("_"):
                    yield f"{module.__name__}.{name}", value


def test_every_hook_a_lower_app_declares_is_provided_by_a_higher_one():
    hooks = dict(_project_hooks())
    assert "records.services.audit_record" in hooks
    assert "workflows.hooks.run_awaiting_approval" in hooks
    missing = [
        where
        for where, hook in hooks.items()
        if (isinstance(hook, Hook) and not hook.is_registered)
        or (isinstance(hook, HookList) and not len(hook))
    ]
    assert not missing, f"no app registers these hooks in its AppConfig.ready(): {missing}"
