"""The filter language shared by the Active, Inactive and Search panels (no Textual here).

``bob app:crm ip:10.2. status:active type:web`` : whitespace-separated terms, all of which
must match. A bare term matches, case-insensitively, a substring of the user, app, IP,
session id or e-mail; ``user:`` ``app:`` ``ip:`` ``sid:`` ``email:`` narrow a term to one
field; ``status:`` (active, inactive, or an end reason such as expired) and ``type:``
(web, api, mobile…) compare whole values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

TEXT_FIELDS = ("user", "app", "ip", "sid", "email")
EXACT_FIELDS = ("status", "type")
FIELD_NAMES = {"user": "username", "app": "app", "ip": "ip", "sid": "sid", "email": "email",
               "status": "status", "type": "type", "reason": "end_reason"}
HASH_FIELDS = ("username", "app", "ip", "email", "type", "status", "end_reason")
"""What a scan reads of each session hash to match a query (one HMGET)."""


@dataclass(frozen=True, slots=True)
class Term:
    field: str | None
    """``None``: any of :data:`TEXT_FIELDS`."""
    value: str
    """Casefolded."""


@dataclass(frozen=True, slots=True)
class Query:
    terms: tuple[Term, ...]
    text: str

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, sid: str, fields: Mapping[str, str | None]) -> bool:
        """Whether a session (its id and the :data:`HASH_FIELDS` read) matches every term."""
        values = {name: str(fields.get(attr) or "").casefold() for name, attr in FIELD_NAMES.items()}
        values["sid"] = sid.casefold()
        for term in self.terms:
            if term.field is None:
                if not any(term.value in values[f] for f in TEXT_FIELDS):
                    return False
            elif term.field == "status":
                if term.value not in (values["status"], values["reason"]):
                    return False
            elif term.field == "type":
                if values["type"] != term.value:
                    return False
            elif term.value not in values[term.field]:
                return False
        return True

    def scan_plan(self) -> tuple[tuple[str, ...], list[tuple[str, str, tuple[int, ...]]]]:
        """What a server-side scan step needs (:func:`core.plans.scan_step`): the hash fields
        the terms look at, and each term as (mode, value, positions), positions counting
        those fields from 1 (0 is the session id). A superset test on the server; the
        candidates it returns still go through :meth:`matches`."""
        fields: list[str] = []

        def at(names: tuple[str, ...]) -> tuple[int, ...]:
            out = []
            for name in names:
                if name == "sid":
                    out.append(0)
                    continue
                attr = FIELD_NAMES[name]
                if attr not in fields:
                    fields.append(attr)
                out.append(fields.index(attr) + 1)
            return tuple(out)

        terms = []
        for term in self.terms:
            if term.field is None:
                terms.append(("s", term.value, at(TEXT_FIELDS)))
            elif term.field == "status":
                terms.append(("e", term.value, at(("status", "reason"))))
            elif term.field == "type":
                terms.append(("e", term.value, at(("type",))))
            else:
                terms.append(("s", term.value, at((term.field,))))
        return tuple(fields), terms

    def index_prefixes(self) -> list[tuple[str, str]]:
        """(kind, prefix) lookups the search index answers at once (core ``search`` kinds),
        for the first term that has any: a candidate set found without scanning."""
        for term in self.terms:
            if term.field in (None, "user", "app", "ip", "sid"):
                kinds = ("user", "app", "ip", "sid") if term.field is None else (term.field,)
                return [(k, term.value) for k in kinds]
        return []


def parse(text: str) -> Query:
    terms = []
    for word in text.split():
        name, sep, value = word.partition(":")
        name = name.casefold()
        if sep and name in FIELD_NAMES and name != "reason":
            if value:
                terms.append(Term(name, value.casefold()))
        else:
            terms.append(Term(None, word.casefold()))
    return Query(tuple(terms), text)
