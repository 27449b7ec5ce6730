"""Run the manual's examples for real: commands through call_command, requests through
DRF's test client with the token the example names.

What a ``sh``/``console``/``crontab`` line may be (anything else fails, asking for a
``<!-- not-run: reason -->`` marker):

- ``python manage.py CMD ARGS`` (also ``.venv/bin/python manage.py``, ``./manage.py``):
  run with call_command; it must succeed. ``A && B`` runs both.
- ``NAME=value`` / ``export NAME=value``: defines ``$NAME``;
  ``NAME=$(python manage.py CMD ARGS)``, optionally ``| awk '{print $N}'``: defines it
  from the command's output.
- ``curl ... URL  # 201``: sent to the API as curl would send it; the comment's
  status is asserted.

An ``http`` block is a request (request line, headers, blank line, body) and then
the response: its status line (asserted), any headers and any body (checked with
the rules of tests/docs/templates.py).
"""

import contextlib
import http
import io
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management import call_command
from django.test import override_settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from rest_framework.test import APIClient

from tests.docs.markdown import ROOT, Block
from tests.docs.templates import Mismatch, expand, match_json, match_text

PYTHON_PREFIXES = (
    ("python", "manage.py"),
    ("python3", "manage.py"),
    (".venv/bin/python", "manage.py"),
)
SERVER = "http://127.0.0.1:8000"
STATUS_LINE = re.compile(r"^HTTP/1\.[01] (?P<code>\d{3})(?: (?P<reason>.+))?$")
REQUEST_LINE = re.compile(
    r"^(?P<method>GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (?P<path>/\S*)(?: HTTP/1\.[01])?$"
)
ASSIGNMENT = re.compile(r"^(?:export\s+)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
SUBSTITUTION = re.compile(
    r"^\$\((?P<command>.+?)(?:\s*\|\s*awk\s+'\{print \$(?P<field>\d+)\}')?\)$"
)
EXPECTED_STATUS = re.compile(r"\s#\s*(?:→\s*)?(?P<code>\d{3})\b[^'\"]*$")

CANNOT_RUN = (
    "{where}: cannot run {line!r} in a test. Run it through manage.py, curl or an http "
    "block, or mark the block <!-- not-run: reason --> (or <!-- run-by-ci --> if .ci/run "
    "runs it)"
)
CURL_STATUS_MISSING = "{where}: a curl example ends with the status it answers, e.g. `# 201`"


class ExampleFailed(AssertionError):
    """An example of the manual that does not do what the manual says."""


@dataclass
class Session:
    """The state the examples of one page share: variables, and an API client."""

    variables: dict[str, str] = field(default_factory=dict)
    client: APIClient = field(default_factory=APIClient)
    capture_on_commit: object = None  # pytest-django's django_capture_on_commit_callbacks
    workdir: Path | None = None  # where commands write files they are told to write
    commands_run: int = 0
    requests_sent: int = 0

    # --- blocks ------------------------------------------------------------------------

    def run_shell_block(self, block: Block, *, console: bool = False) -> None:
        """Run every command of a sh block (or the `$ ` lines of a console block)."""
        for number, line in _logical_lines(block, console=console):
            self.run_shell_line(line, where=f"{block.where} (line {number})")

    def run_crontab_block(self, block: Block) -> None:
        """Run the command of every schedule line (the five time fields dropped)."""
        for number, line in _logical_lines(block):
            fields = line.split(None, 5)
            if len(fields) < 6:
                raise ExampleFailed(f"{block.where} (line {number}): not a crontab line: {line}")
            self.run_shell_line(fields[5], where=f"{block.where} (line {number})")

    def run_http_block(self, block: Block) -> None:
        """Send the block's request and check the response it documents."""
        lines = list(block.lines)
        split = next((i for i, line in enumerate(lines) if STATUS_LINE.match(line)), None)
        if split is None:
            raise ExampleFailed(
                f"{block.where}: an http example shows the response's status line "
                "(e.g. `HTTP/1.1 200 OK`) after the request"
            )
        # A request's JSON must be valid, unless the example shows the API refusing it.
        valid_json = not STATUS_LINE.match(lines[split])["code"].startswith("4")
        try:
            response = self._send_http(lines[:split], where=block.where, valid_json=valid_json)
            self._check_http_response(lines[split:], response, where=block.where)
        except (KeyError, Mismatch) as error:
            raise ExampleFailed(f"{block.where}: {_message(error)}") from error

    # --- shell ---------------------------------------------------------------------------

    def run_shell_line(self, line: str, *, where: str) -> None:
        for part in _split_and(line):
            try:
                self._run_one(part, where=where)
            except KeyError as error:
                raise ExampleFailed(f"{where}: {_message(error)}") from error

    def _run_one(self, line: str, *, where: str) -> None:
        assignment = ASSIGNMENT.match(line)
        if assignment:
            value = assignment["value"].strip()
            substitution = SUBSTITUTION.match(value)
            if substitution:
                output = self._manage_py(substitution["command"], where=where, line=line)
                if substitution["field"]:
                    output = _awk_print(output, int(substitution["field"]))
                if not output.strip():
                    raise ExampleFailed(
                        f"{where}: `{line}` defines ${assignment['name']} as nothing"
                    )
                self.variables[assignment["name"]] = output.strip()
            else:
                words = shlex.split(expand(value, self.variables, shell=True))
                self.variables[assignment["name"]] = " ".join(words)
            return
        if line.startswith("curl "):
            self._curl(line, where=where)
            return
        self._manage_py(line, where=where, line=line)

    def _manage_py(self, command: str, *, where: str, line: str) -> str:
        words = shlex.split(expand(command, self.variables, shell=True), comments=True)
        if words[:1] in (["manage.py"], ["./manage.py"]):
            arguments = words[1:]
        elif tuple(words[:2]) in PYTHON_PREFIXES:
            arguments = words[2:]
        else:
            raise ExampleFailed(CANNOT_RUN.format(where=where, line=line))
        stdout, stderr = io.StringIO(), io.StringIO()
        try:
            # As on the reader's machine: manage.py's local settings turn DEBUG on.
            with (
                contextlib.redirect_stdout(stdout),
                contextlib.redirect_stderr(stderr),
                override_settings(DEBUG=True),
                contextlib.chdir(self.workdir or ROOT),
                self._commit(),
            ):
                call_command(*arguments)
        except Exception as error:
            raise ExampleFailed(
                f"{where}: `{line}` failed: {type(error).__name__}: {error}\n{stderr.getvalue()}"
            ) from error
        self.commands_run += 1
        return stdout.getvalue()

    # --- curl ----------------------------------------------------------------------------

    def _curl(self, line: str, *, where: str) -> None:
        status = EXPECTED_STATUS.search(line)
        if status is None:
            raise ExampleFailed(CURL_STATUS_MISSING.format(where=where))
        words = shlex.split(expand(line, self.variables, shell=True), comments=True)[1:]
        method, headers, data, form, url = None, {}, None, {}, None
        content_type = None
        while words:
            word = words.pop(0)
            if word in ("-s", "-S", "-sS", "--silent", "--show-error", "-i", "--include"):
                continue
            if word in ("-o", "--output", "-D", "--dump-header", "-w", "--write-out"):
                words.pop(0)  # where curl writes what it receives: nothing to send
            elif word in ("-X", "--request"):
                method = words.pop(0)
            elif word in ("-H", "--header"):
                name, _, value = words.pop(0).partition(":")
                if name.lower() == "content-type":
                    content_type = value.strip()
                else:
                    headers[name.strip()] = value.strip()
            elif word in ("-d", "--data", "--data-raw", "--data-binary"):
                data = words.pop(0)
                if data.startswith("@") and word != "--data-raw":
                    data = (ROOT / data[1:]).read_text()
            elif word in ("-F", "--form"):
                name, _, value = words.pop(0).partition("=")
                form[name] = (ROOT / value[1:]).open("rb") if value.startswith("@") else value
            elif word.startswith(SERVER) and url is None:
                url = word[len(SERVER) :]
            else:
                raise ExampleFailed(f"{where}: curl option {word!r} is not supported here")
        if url is None:
            raise ExampleFailed(f"{where}: curl needs a URL starting with {SERVER}")
        if form:
            body, content_type = encode_multipart(BOUNDARY, form), MULTIPART_CONTENT
            for value in form.values():
                if hasattr(value, "close"):
                    value.close()
        elif data is not None:
            body = data.encode()
            content_type = content_type or "application/x-www-form-urlencoded"
        else:
            body = b""
        method = method or ("POST" if form or data is not None else "GET")
        response = self._request(method, url, headers, body, content_type)
        if response.status_code != int(status["code"]):
            raise ExampleFailed(
                f"{where}: documented status {status['code']}, got {response.status_code}: "
                f"{_body_text(response)}"
            )

    # --- http ----------------------------------------------------------------------------

    def _send_http(self, lines: list[str], *, where: str, valid_json: bool):
        request = REQUEST_LINE.match(expand(lines[0], self.variables)) if lines else None
        if request is None:
            raise ExampleFailed(
                f"{where}: an http example starts with a request line, e.g. "
                "`GET /api/v1/engagements/ HTTP/1.1`"
            )
        headers, content_type, index = {}, None, 1
        while index < len(lines) and lines[index].strip():
            name, _, value = expand(lines[index], self.variables).partition(":")
            if name.lower() == "content-type":
                content_type = value.strip()
            elif name.lower() != "host":
                headers[name.strip()] = value.strip()
            index += 1
        body = expand("\n".join(lines[index:]).strip(), self.variables)
        if body and content_type == "application/json" and valid_json:
            try:
                json.loads(body)
            except ValueError as error:
                raise ExampleFailed(f"{where}: the request body is not JSON: {error}") from error
        return self._request(
            request["method"], request["path"], headers, body.encode(), content_type
        )

    def _check_http_response(self, lines: list[str], response, *, where: str) -> None:
        status = STATUS_LINE.match(lines[0])
        code = int(status["code"])
        reason = status["reason"]
        if reason and reason != http.HTTPStatus(code).phrase:
            raise ExampleFailed(
                f"{where}: the status line reads {reason!r}; "
                f"{code} is {http.HTTPStatus(code).phrase!r}"
            )
        if response.status_code != code:
            raise ExampleFailed(
                f"{where}: documented status {code}, got {response.status_code}: "
                f"{_body_text(response)}"
            )
        index = 1
        while index < len(lines) and lines[index].strip():
            name, _, template = lines[index].partition(":")
            actual = response.headers.get(name.strip())
            if actual is None:
                raise Mismatch(f"header {name.strip()} is documented but not sent")
            match_text(template.strip(), actual, self.variables, what=f"header {name.strip()}")
            index += 1
        documented = "\n".join(lines[index:]).strip()
        if not documented:
            return
        if "json" in response.headers.get("Content-Type", ""):
            try:
                expected = json.loads(documented)
            except ValueError as error:
                raise ExampleFailed(
                    f"{where}: the documented body is not valid JSON: {error}"
                ) from error
            match_json(expected, response.json(), self.variables)
        else:
            match_text(documented, _body_text(response), self.variables, what="body")

    def _request(self, method, path, headers, body: bytes, content_type):
        with self._commit():
            response = self.client.generic(
                method,
                path,
                data=body,
                content_type=content_type or "application/octet-stream",
                headers=headers,
            )
        self.requests_sent += 1
        return response

    def _commit(self):
        """Run what waits for the commit (queueing a run sends its task), as a commit would."""
        if self.capture_on_commit is None:
            return contextlib.nullcontext()
        return self.capture_on_commit(execute=True)


def _logical_lines(block: Block, *, console: bool = False):
    """Yield (line number in block, command) with `\\` continuations joined."""
    pending, start = "", 0
    for number, raw in enumerate(block.lines, start=1):
        line = raw.rstrip()
        if console and not pending:
            if not line.startswith("$ "):
                continue  # output, shown to the reader
            line = line[2:]
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield start, (pending + line).strip()
        pending = ""


def _awk_print(output: str, number: int) -> str:
    """Return what `awk '{print $number}'` prints: that field of every line."""
    fields = (line.split() for line in output.splitlines())
    return "\n".join(words[number - 1] if len(words) >= number else "" for words in fields)


def _split_and(line: str) -> list[str]:
    """Split `a && b` outside quotes."""
    parts, current, quote = [], [], None
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif line.startswith("&&", index):
            parts.append("".join(current).strip())
            current, index = [], index + 2
            continue
        current.append(char)
        index += 1
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _body_text(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    text = content.decode("utf-8", errors="replace")
    return text if len(text) < 1500 else text[:1500] + "…"


def _message(error: BaseException) -> str:
    return error.args[0] if error.args else str(error)
