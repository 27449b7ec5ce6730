"""Every command and API example of the manual (README.md and docs/) does what it says.

Each page's examples run in order, as a reader would type them after `make run`,
against a test database holding the demo data (`load_demo`): commands through
call_command, API requests through DRF's test client with the demo user's token.
A failing example names its page and line. The convention is in docs/examples.md
(for readers) and tests/docs/markdown.py and runner.py (for writers).
"""

import ast
import importlib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.db import transaction
from django.test import override_settings

from tests.docs.markdown import DOCS, ROOT, Block, manual_pages, read_blocks
from tests.docs.runner import ExampleFailed, Session, _logical_lines

SHELL_LANGUAGES = ("sh", "bash", "shell")
RUNNABLE_LANGUAGES = (*SHELL_LANGUAGES, "console", "crontab", "http")
SKIPPED_MARKERS = ("not-run", "run-by-ci", "example", "example-setup")
SETUP_PAGE = DOCS / "examples.md"
LOOKS_LIKE_A_COMMAND = re.compile(
    r"^\s*(?:\$ |curl |(?:\.venv/bin/)?python3? manage\.py |\./manage\.py |make )"
)


def _read_manual() -> tuple[dict[Path, list[Block]], dict[Path, str]]:
    blocks, errors = {}, {}
    for page in manual_pages():
        try:
            blocks[page] = read_blocks(page)
        except ValueError as error:
            errors[page] = str(error)
    return blocks, errors


BLOCKS, PARSE_ERRORS = _read_manual()


def _runs(block: Block) -> bool:
    return block.language in RUNNABLE_LANGUAGES and block.marker not in SKIPPED_MARKERS


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


PAGES_WITH_EXAMPLES = [page for page, blocks in BLOCKS.items() if any(map(_runs, blocks))]


# --- the demo back office the examples run against ------------------------------------------


@dataclass
class DemoWorld:
    media: Path
    backups: Path


@pytest.fixture(scope="module")
def demo_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo data of `make run`, loaded once for the module and rolled back after it.

    Each test runs in a savepoint inside this transaction (pytest-django's `db`), so
    one page's examples never see another's changes.
    """
    folder = tmp_path_factory.mktemp("docs-examples")
    world = DemoWorld(media=folder / "media", backups=folder / "backups")
    with (
        django_db_blocker.unblock(),
        override_settings(MEDIA_ROOT=world.media, BACKUP_ROOT=world.backups),
        transaction.atomic(),
    ):
        call_command("load_demo", force=True, stdout=_Discard())
        yield world
        transaction.set_rollback(True)


class _Discard:
    def write(self, text):
        return len(text)

    def flush(self):
        pass


@pytest.fixture(autouse=True)
def media_root(demo_world):
    """The demo's files stay where load_demo stored them (replaces the per-test folder)."""
    return demo_world.media


@pytest.fixture
def session(db, demo_world, django_capture_on_commit_callbacks, tmp_path):
    """A reader's session: the variables of docs/examples.md's setup block defined."""
    session = Session(capture_on_commit=django_capture_on_commit_callbacks, workdir=tmp_path)
    session.run_shell_block(_setup_block())
    return session


def _setup_block() -> Block:
    setup = [b for b in BLOCKS.get(SETUP_PAGE, []) if b.marker == "example-setup"]
    assert len(setup) == 1, f"{_name(SETUP_PAGE)} has exactly one <!-- example-setup --> block"
    return setup[0]


# --- every page's examples, run --------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=_name)
def test_the_examples_of_the_page_do_what_it_says(page, session):
    for block in BLOCKS[page]:
        if not _runs(block):
            continue
        if block.language == "http":
            session.run_http_block(block)
        elif block.language == "crontab":
            session.run_crontab_block(block)
        else:
            session.run_shell_block(block, console=block.language == "console")


def test_the_manual_has_examples_to_run():
    """A convention that silently found nothing would prove nothing."""
    blocks = [block for page in PAGES_WITH_EXAMPLES for block in BLOCKS[page]]
    assert len(PAGES_WITH_EXAMPLES) >= 10
    assert sum(block.language == "http" for block in blocks if _runs(block)) >= 20
    assert sum(block.language in SHELL_LANGUAGES for block in blocks if _runs(block)) >= 10


# --- blocks that do not run say why; the rest is checked against the code ---------------------


def test_every_page_follows_the_example_convention():
    assert not PARSE_ERRORS, "\n".join(PARSE_ERRORS.values())


def test_commands_outside_runnable_blocks_are_marked():
    """A command shown in a ```text block (or unlabelled) would escape the tests."""
    hidden = [
        f"{block.where}: {line.strip()}"
        for blocks in BLOCKS.values()
        for block in blocks
        if block.language not in RUNNABLE_LANGUAGES
        and block.marker is None
        and not block.text.startswith("usage: ")
        for line in block.lines
        if LOOKS_LIKE_A_COMMAND.match(line)
    ]
    assert not hidden, "use ```sh (or mark <!-- not-run: reason -->):\n" + "\n".join(hidden)


def test_blocks_run_by_ci_are_in_ci():
    ci = (ROOT / ".ci" / "run").read_text()
    missing = [
        f"{block.where}: {line}"
        for blocks in BLOCKS.values()
        for block in blocks
        if block.marker == "run-by-ci"
        for _number, line in _logical_lines(block, console=block.language == "console")
        if line.removeprefix(".venv/bin/") not in ci
    ]
    assert not missing, "marked <!-- run-by-ci --> but not in .ci/run:\n" + "\n".join(missing)


def _usage_blocks():
    return [
        block
        for blocks in BLOCKS.values()
        for block in blocks
        if block.language == "text" and block.text.startswith("usage: ")
    ]


def test_usage_lines_name_real_commands_and_options():
    assert _usage_blocks(), "the commands reference shows each command's usage"
    commands = get_commands()
    problems = []
    for block in _usage_blocks():
        words = shlex.split(block.text.removeprefix("usage: "))
        words = words[1:] if words[0] in ("python", ".venv/bin/python") else words
        name = words[1]
        if words[0] != "manage.py" or name not in commands:
            problems.append(f"{block.where}: no command {name!r}")
            continue
        parser = load_command_class(commands[name], name).create_parser("manage.py", name)
        for option in re.findall(r"(?<![\w-])--?[a-z][\w-]*", block.text):
            if option not in parser._option_string_actions:
                problems.append(f"{block.where}: {name} has no option {option}")
    assert not problems, "\n".join(problems)


def test_python_examples_import_what_exists():
    problems = []
    for blocks in BLOCKS.values():
        for block in blocks:
            if block.language != "python" or block.marker in SKIPPED_MARKERS:
                continue
            try:
                tree = ast.parse(block.text)
            except SyntaxError as error:
                problems.append(f"{block.where}: not Python: {error}")
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom):
                    module = importlib.import_module(node.module)
                    problems += [
                        f"{block.where}: {node.module} has no {alias.name}"
                        for alias in node.names
                        if not hasattr(module, alias.name)
                    ]
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        importlib.import_module(alias.name)
    assert not problems, "\n".join(problems)


# --- the harness itself: a wrong example fails ------------------------------------------------


def _block(language: str, *lines: str) -> Block:
    return Block(path=SETUP_PAGE, line=1, language=language, lines=lines)


def test_a_response_that_differs_from_the_page_fails(session):
    block = _block(
        "http",
        "GET /api/v1/engagements/?client_code=ACME HTTP/1.1",
        "Authorization: Token $ALICE",
        "",
        "HTTP/1.1 200 OK",
        "",
        '{"count": 1, "results": [{"status": "draft"}]}',
    )
    with pytest.raises(ExampleFailed, match=r"results\[0\]\.status: documented 'draft', got"):
        session.run_http_block(block)


def test_a_status_that_differs_from_the_page_fails(session):
    block = _block("sh", 'curl -s "$API/engagements/"   # 200')
    with pytest.raises(ExampleFailed, match="documented status 200, got 401"):
        session.run_shell_block(block)


def test_a_command_that_fails_fails_its_example(session):
    block = _block("console", "$ python manage.py verify_artefacts --engagment $ACME")
    with pytest.raises(ExampleFailed, match="unrecognized arguments: --engagment"):
        session.run_shell_block(block, console=True)


def test_a_line_that_cannot_run_asks_for_a_marker(session):
    block = _block("sh", "gunicorn config.wsgi")
    with pytest.raises(ExampleFailed, match="mark the block <!-- not-run: reason -->"):
        session.run_shell_block(block)


def test_an_undefined_variable_is_named(session):
    block = _block("sh", "python manage.py verify_artefacts --engagement $NOWHERE")
    with pytest.raises(ExampleFailed, match=r"\$NOWHERE is used before any example defines it"):
        session.run_shell_block(block)
