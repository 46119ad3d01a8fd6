"""Schemathesis hooks of scripts/schemathesis/run.

The OpenAPI document declares every rule that JSON Schema can express. A few rules of the API
are about a request as a whole, which no schema can say, so a schema-valid request generated at
random breaks them and is rightly refused:

- `cursor` of GET /api/v1/github-users is opaque: only a `next_cursor` the server handed out
  for the same `sort` is valid (and of GET /api/v1/repos: one it handed out);
- GET /api/v1/repos/{name}/traffic takes `range` or `from`/`to`, not both, and `from` not
  after `to`;
- a feed snapshot (PUT /api/v1/assets, PUT /api/v1/distribution-lists) names each laptop once,
  each membership once, and gives a list the same name and `hidden` on all its rows.

For positive cases only (those Schemathesis says the server must accept), these hooks make a
generated request keep those rules: a cursor the server handed out for the case's sort, and the
rows that would break a snapshot's cross-row rules left out. Negative cases are sent as
generated.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import urllib.parse
import urllib.request
from typing import Any

import schemathesis

# What Rust's `str::trim` removes (Unicode White_Space); Python's `str.strip()` removes more.
_RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def _trim(value: Any) -> str:
    return str(value).strip(_RUST_WHITESPACE)


def _email(value: Any) -> str:
    return _trim(value).lower()


def _flag(value: Any) -> bool:
    return value is not None and _trim(value).lower() in ("true", "1", "yes")


# --- cursors ---------------------------------------------------------------------------------

_cursors: dict[str, str | None] = {}


def _cursor_for(path: str, params: dict[str, str]) -> str | None:
    """A `next_cursor` of the first page of one row at `path`, asked of the server once."""
    query = urllib.parse.urlencode({"limit": "1", **params})
    key = f"{path}?{query}"
    if key not in _cursors:
        base = os.environ["FUZZ_BASE_URL"].rstrip("/")
        request = urllib.request.Request(
            f"{base}{key}",
            headers={"Authorization": f"Bearer {os.environ['FUZZ_TOKEN']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            _cursors[key] = json.load(response).get("next_cursor")
    return _cursors[key]


def _server_cursor(case: Any, path: str, params: dict[str, str]) -> None:
    query = case.query
    if not isinstance(query, dict) or query.get("cursor") in (None, ""):
        return
    cursor = _cursor_for(path, params)
    if cursor is None:
        del query["cursor"]
    else:
        query["cursor"] = cursor


def _directory_cursor(case: Any) -> None:
    sort = case.query.get("sort") if isinstance(case.query, dict) else None
    sort = sort if isinstance(sort, str) and sort else "name"
    _server_cursor(case, "/api/v1/github-users", {"sort": sort, "include_departed": "1"})


def _one_range(case: Any) -> None:
    query = case.query
    if not isinstance(query, dict):
        return
    if query.get("range") not in (None, "") and (query.get("from") or query.get("to")):
        del query["range"]
    start, end = query.get("from"), query.get("to")
    if isinstance(start, str) and start and not end:
        # Without `to`, the series ends today (UTC): a later `from` would be after it.
        today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
        if start > today:
            query["to"] = end = start
    if isinstance(start, str) and isinstance(end, str) and start and end and start > end:
        query["from"], query["to"] = end, start


# --- snapshots -------------------------------------------------------------------------------


def _keep_asset(row: dict, seen: dict) -> bool:
    serial = _trim(row.get("serial", ""))
    if serial in seen:
        return False
    seen[serial] = True
    return True


def _keep_membership(row: dict, seen: dict) -> bool:
    lists = seen.setdefault("lists", {})
    members = seen.setdefault("members", set())
    list_email = _email(row.get("list_email", ""))
    info = (_trim(row.get("name", "")), _flag(row.get("hidden")))
    membership = (list_email, _email(row.get("member_email", "")), _trim(row.get("role", "")).lower())
    if lists.get(list_email, info) != info or membership in members:
        return False
    lists[list_email] = info
    members.add(membership)
    return True


def _consistent_rows(body: Any, keep: Any) -> Any:
    seen: dict = {}
    if isinstance(body, list):
        return [row for row in body if not isinstance(row, dict) or keep(row, seen)]
    if isinstance(body, str):
        # The schema's CSV pattern has no quoting: fields split on commas, rows on line breaks.
        lines = re.split(r"\r?\n", body)
        trailing = lines[-1] == "" and len(lines) > 1
        lines = lines[:-1] if trailing else lines
        header = lines[0].split(",")
        rows = [line for line in lines[1:] if keep(dict(zip(header, line.split(","))), seen)]
        return "\n".join([lines[0], *rows]) + ("\n" if trailing else "")
    return body


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    where = (case.method.upper(), case.operation.path)
    if where == ("GET", "/api/v1/github-users"):
        _directory_cursor(case)
    elif where == ("GET", "/api/v1/repos"):
        _server_cursor(case, "/api/v1/repos", {})
    elif where == ("GET", "/api/v1/repos/{name}/traffic"):
        _one_range(case)
    elif where == ("PUT", "/api/v1/assets"):
        case.body = _consistent_rows(case.body, _keep_asset)
    elif where == ("PUT", "/api/v1/distribution-lists"):
        case.body = _consistent_rows(case.body, _keep_membership)
    return case
