#!/usr/bin/env python3
"""Checks that the baseline answers the benchmark queries with the very bytes dishpatch sends.

    python3 bench/compare.py http://127.0.0.1:8090 http://127.0.0.1:8091 [--slug SLUG ...]

The first URL is dishpatch, the second the baseline (`bench/baseline`). Each case is posted to
both with `accept: application/json`: Q1; Q2 with first=10 and first=100; Q3 for a few slugs
(one of them missing, so `restaurant` is null). From dishpatch's body the top-level
`extensions` entry (its cost report) is cut out of the raw bytes, and what is left must equal
the baseline's body byte for byte. Nothing is re-serialized, so number formatting, string
escaping and key order all count.

A case prints OK, or DIFF with the first differing offset and the bytes around it, followed by
a diagnosis: whether the two bodies are the same JSON apart from the order of keys (every key,
string and number still compared as raw text) and where the order first differs.

Exit status 1 when any case differs. `--allow-key-order` accepts bodies that differ only in the
order of object keys (reported as OK*), for as long as dishpatch's order is not deterministic.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

QUERIES = Path(__file__).resolve().parent / "queries"
CONTEXT = 60


@dataclass
class Case:
    name: str
    body: bytes


def cases(slugs: list[str]) -> list[Case]:
    def case(name: str, file: str, operation: str, variables: dict | None) -> Case:
        document = (QUERIES / file).read_text()
        body = {"query": document, "operationName": operation, "variables": variables}
        return Case(name, json.dumps(body).encode())

    return [
        case("Q1 Restaurants", "q1_restaurants.graphql", "Restaurants", None),
        case("Q2 Nested first=10", "q2_nested.graphql", "Nested", {"first": 10}),
        case("Q2 Nested first=100", "q2_nested.graphql", "Nested", {"first": 100}),
        *(
            case(f"Q3 Restaurant slug={slug}", "q3_restaurant.graphql", "Restaurant", {"slug": slug})
            for slug in slugs
        ),
    ]


def post(base_url: str, body: bytes) -> tuple[int, bytes, str | None]:
    request = urllib.request.Request(
        base_url.rstrip("/") + "/graphql",
        data=body,
        headers={"content-type": "application/json", "accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), response.headers.get("x-sql-statements")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("x-sql-statements")


# A JSON parser that keeps raw text: objects are lists of (raw key, value), arrays lists of
# values, scalars their exact bytes; every value also records where it starts and ends.


@dataclass
class Raw:
    kind: str  # "object", "array" or "scalar"
    start: int
    end: int
    members: list  # [(raw key, Raw)] for objects, [Raw] for arrays, [] for scalars


def parse_raw(text: bytes) -> Raw:
    position = 0

    def skip_space() -> None:
        nonlocal position
        while position < len(text) and text[position] in b" \t\r\n":
            position += 1

    def string() -> bytes:
        nonlocal position
        start = position
        position += 1  # the opening quote
        while text[position] != ord('"'):
            position += 2 if text[position] == ord("\\") else 1
        position += 1
        return text[start:position]

    def value() -> Raw:
        nonlocal position
        skip_space()
        start = position
        first = text[position : position + 1]
        if first == b"{":
            position += 1
            members = []
            skip_space()
            if text[position : position + 1] == b"}":
                position += 1
                return Raw("object", start, position, members)
            while True:
                skip_space()
                key = string()
                skip_space()
                assert text[position : position + 1] == b":", f"expected ':' at {position}"
                position += 1
                members.append((key, value()))
                skip_space()
                separator = text[position : position + 1]
                position += 1
                if separator == b"}":
                    return Raw("object", start, position, members)
                assert separator == b",", f"expected ',' or '}}' at {position - 1}"
        if first == b"[":
            position += 1
            items = []
            skip_space()
            if text[position : position + 1] == b"]":
                position += 1
                return Raw("array", start, position, items)
            while True:
                items.append(value())
                skip_space()
                separator = text[position : position + 1]
                position += 1
                if separator == b"]":
                    return Raw("array", start, position, items)
                assert separator == b",", f"expected ',' or ']' at {position - 1}"
        if first == b'"':
            string()
            return Raw("scalar", start, position, [])
        while position < len(text) and text[position] not in b",]} \t\r\n":
            position += 1
        assert position > start, f"unexpected byte at {start}"
        return Raw("scalar", start, position, [])

    root = value()
    skip_space()
    assert position == len(text), f"trailing bytes at {position}"
    return root


def strip_extensions(body: bytes) -> bytes:
    """`body` without its top-level `extensions` member, cut out of the raw bytes."""
    root = parse_raw(body)
    assert root.kind == "object", "dishpatch's body is not a JSON object"
    members = root.members
    for index, (key, member) in enumerate(members):
        if key != b'"extensions"':
            continue
        if index > 0:  # usual case: cut from the end of the previous value to the end of this one
            return body[: members[index - 1][1].end] + body[member.end :]
        if len(members) > 1:  # first member: cut up to the next key
            next_key_at = body.index(members[1][0], member.end)
            return body[: root.start + 1] + body[next_key_at:]
        return body[: root.start + 1] + body[member.end :]
    return body


def same_apart_from_order(a: Raw, b: Raw, text_a: bytes, text_b: bytes) -> bool:
    """Whether two values are equal, raw text for raw text, ignoring the order of object keys."""
    if a.kind != b.kind:
        return False
    if a.kind == "scalar":
        return text_a[a.start : a.end] == text_b[b.start : b.end]
    if a.kind == "array":
        return len(a.members) == len(b.members) and all(
            same_apart_from_order(x, y, text_a, text_b) for x, y in zip(a.members, b.members)
        )
    keys_a, keys_b = dict(a.members), dict(b.members)
    return len(keys_a) == len(a.members) == len(b.members) == len(keys_b) and all(
        key in keys_b and same_apart_from_order(value, keys_b[key], text_a, text_b)
        for key, value in keys_a.items()
    )


def first_order_difference(a: Raw, b: Raw, path: str = "") -> tuple[str, list[str], list[str]] | None:
    """The first object (depth first) whose keys come in another order, with both orders."""
    if a.kind != b.kind:
        return None
    if a.kind == "array":
        for index, (x, y) in enumerate(zip(a.members, b.members)):
            if found := first_order_difference(x, y, f"{path}[{index}]"):
                return found
    if a.kind == "object":
        order_a = [key.decode()[1:-1] for key, _ in a.members]
        order_b = [key.decode()[1:-1] for key, _ in b.members]
        if order_a != order_b:
            return path or ".", order_a, order_b
        for (key, x), (_, y) in zip(a.members, b.members):
            if found := first_order_difference(x, y, f"{path}.{key.decode()[1:-1]}"):
                return found
    return None


def compare(name: str, dishpatch_url: str, baseline_url: str, body: bytes, allow_key_order: bool) -> bool:
    status_ours, ours, statements_ours = post(dishpatch_url, body)
    status_theirs, theirs, statements_theirs = post(baseline_url, body)
    if status_ours != 200 or status_theirs != 200:
        print(f"DIFF  {name}: HTTP {status_ours} from dishpatch, {status_theirs} from the baseline")
        print(f"      dishpatch: {ours[:300]!r}\n      baseline:  {theirs[:300]!r}")
        return False
    ours = strip_extensions(ours)
    statements = f"({len(theirs)} bytes, SQL statements: dishpatch {statements_ours}, baseline {statements_theirs})"
    if ours == theirs:
        print(f"OK    {name} {statements}")
        return True
    at = next((i for i, (x, y) in enumerate(zip(ours, theirs)) if x != y), min(len(ours), len(theirs)))
    raw_ours, raw_theirs = parse_raw(ours), parse_raw(theirs)
    order_only = same_apart_from_order(raw_ours, raw_theirs, ours, theirs)
    if order_only and allow_key_order:
        path, order_ours, order_theirs = first_order_difference(raw_ours, raw_theirs)
        print(f"OK*   {name} {statements}: keys in another order, first at {path}: "
              f"dishpatch {order_ours}, baseline {order_theirs}")
        return True
    print(f"DIFF  {name}: {len(ours)} bytes from dishpatch (without extensions), {len(theirs)} from the baseline; "
          f"first difference at byte {at}")
    print(f"      dishpatch: {ours[max(0, at - CONTEXT) : at + CONTEXT]!r}")
    print(f"      baseline:  {theirs[max(0, at - CONTEXT) : at + CONTEXT]!r}")
    if order_only:
        path, order_ours, order_theirs = first_order_difference(raw_ours, raw_theirs)
        print(f"      same JSON apart from the order of keys (every key, string and number is byte-identical); "
              f"first at {path}: dishpatch {order_ours}, baseline {order_theirs}")
    else:
        print("      the content differs, not only the order of keys")
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dishpatch", help="dishpatch's base URL, e.g. http://127.0.0.1:8090")
    parser.add_argument("baseline", help="the baseline's base URL, e.g. http://127.0.0.1:8091")
    parser.add_argument(
        "--slug",
        action="append",
        help="a Q3 slug (repeatable; default: trattoria-roma, bangkok-street, no-such-restaurant)",
    )
    parser.add_argument(
        "--allow-key-order",
        action="store_true",
        help="accept bodies that differ only in the order of object keys",
    )
    args = parser.parse_args()
    slugs = args.slug or ["trattoria-roma", "bangkok-street", "no-such-restaurant"]
    results = [
        compare(case.name, args.dishpatch, args.baseline, case.body, args.allow_key_order)
        for case in cases(slugs)
    ]
    failed = results.count(False)
    print(f"{len(results) - failed} of {len(results)} cases passed" + (f", {failed} differ" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
