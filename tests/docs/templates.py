"""Variables and templates of the manual's examples: `$NAME` and `…`.

`$NAME` (capitals, digits, underscores; also `${NAME}`) is a variable. In a command or
a request it is replaced by its value; in a documented response it is compared with
the value, or, the first time it appears, takes the value found there (so a response
showing `"id": "$ENG"` defines `$ENG` for the examples after it). `…` stands for
anything.
"""

import json
import re

VARIABLE = re.compile(r"\$(?:\{(?P<braced>[A-Z][A-Z0-9_]*)\}|(?P<plain>[A-Z][A-Z0-9_]*))")
ELLIPSIS = "…"

UNDEFINED = "${name} is used before any example defines it"


class Mismatch(AssertionError):
    """A documented response (or header) that the real one does not match."""


def expand(text: str, variables: dict[str, str], *, shell: bool = False) -> str:
    """Return `text` with every `$NAME` replaced; in `shell` mode not inside '…' quotes."""
    parts = re.split(r"('[^']*')", text) if shell else [text]
    out = []
    for part in parts:
        if shell and part.startswith("'") and part.endswith("'") and len(part) >= 2:
            out.append(part)
            continue
        out.append(VARIABLE.sub(lambda m: _value(m, variables), part))
    return "".join(out)


def _value(match: re.Match, variables: dict[str, str]) -> str:
    name = match["braced"] or match["plain"]
    if name not in variables:
        raise KeyError(UNDEFINED.format(name=name))
    return variables[name]


def match_text(template: str, actual: str, variables: dict[str, str], *, what: str) -> None:
    """Check `actual` against `template` (whole text), binding new variables."""
    pattern, names = _compile(template, variables)
    found = re.fullmatch(pattern, actual, flags=re.DOTALL)
    if found is None:
        shown = VARIABLE.sub(
            lambda m: variables.get(m["braced"] or m["plain"], m.group(0)), template
        )
        raise Mismatch(f"{what}: documented {shown!r}, got {actual!r}")
    for name in names:
        variables[name] = found[name]


def _compile(template: str, variables: dict[str, str]) -> tuple[str, list[str]]:
    pattern, names, position = [], [], 0
    for token in re.finditer(rf"{VARIABLE.pattern}|{ELLIPSIS}", template):
        pattern.append(re.escape(template[position : token.start()]))
        position = token.end()
        if token.group(0) == ELLIPSIS:
            pattern.append(".*?")
            continue
        name = token["braced"] or token["plain"]
        if name in variables:
            pattern.append(re.escape(variables[name]))
        elif name in names:
            pattern.append(f"(?P={name})")
        else:
            pattern.append(f"(?P<{name}>.+?)")
            names.append(name)
    pattern.append(re.escape(template[position:]))
    return "".join(pattern), names


def match_json(documented, actual, variables: dict[str, str], path: str = "body") -> None:
    """Check that `actual` holds everything `documented` shows (a subset), binding variables.

    Objects: every documented key must be there, with a matching value; other keys
    may be there too. Lists: element by element, the same length, unless the last
    documented element is "…" (then the rest may follow). Strings are templates.
    """
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            raise Mismatch(f"{path}: documented an object, got {_show(actual)}")
        for key, value in documented.items():
            if key not in actual:
                raise Mismatch(f"{path}: documented key {key!r} is missing from {_show(actual)}")
            match_json(value, actual[key], variables, f"{path}.{key}")
    elif isinstance(documented, list):
        if not isinstance(actual, list):
            raise Mismatch(f"{path}: documented a list, got {_show(actual)}")
        open_ended = bool(documented) and documented[-1] == ELLIPSIS
        items = documented[:-1] if open_ended else documented
        if len(actual) < len(items) or (not open_ended and len(actual) != len(items)):
            raise Mismatch(f"{path}: documented {len(items)} item(s), got {len(actual)}")
        for index, item in enumerate(items):
            match_json(item, actual[index], variables, f"{path}[{index}]")
    elif isinstance(documented, str):
        if documented == ELLIPSIS:
            return
        if isinstance(actual, str):
            match_text(documented, actual, variables, what=path)
        elif VARIABLE.fullmatch(documented):
            match_text(documented, json.dumps(actual), variables, what=path)
        else:
            raise Mismatch(f"{path}: documented {documented!r}, got {_show(actual)}")
    elif isinstance(documented, bool) or documented is None:
        if actual is not documented:
            raise Mismatch(f"{path}: documented {documented!r}, got {_show(actual)}")
    elif isinstance(actual, bool) or not isinstance(actual, int | float) or documented != actual:
        raise Mismatch(f"{path}: documented {documented!r}, got {_show(actual)}")


def _show(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 300 else text[:300] + "…"
