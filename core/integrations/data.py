"""Session data as web frameworks see it: a plain ``dict`` whose stored copy lives in Redis.

Shared by the Flask and ASGI integrations, and free of either framework. Each session key
is stored as its own field (``d:<key>``, see :data:`core.plans.DATA_PREFIX`) holding the
value as the framework's serializer encodes it, so a save sends only the keys that
changed, and a write that never read the session needs no read first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import DataTooLarge

Encode = Callable[[Any], str]
Decode = Callable[[str], Any]


class SessionDataError(ValueError):
    """A session key or value that cannot be stored; the message names the key."""


def encoded_size(key: str, raw: str) -> int:
    """Bytes a key and its encoded value take in Redis (what the size cap counts)."""
    return len(("d:" + key).encode("utf-8", "surrogatepass")) + len(raw.encode("utf-8", "surrogatepass"))


def check_key(key: object) -> str:
    if not isinstance(key, str):
        raise SessionDataError(f"session keys must be text, not {type(key).__name__} ({str(key)[:40]!r})")
    return key


def encode_one(encode: Encode, key: str, value: Any, limit: int) -> str:
    try:
        raw = encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SessionDataError(f"session[{key[:60]!r}]: cannot be stored ({exc})") from None
    size = encoded_size(key, raw)
    if limit and size > limit:
        raise SessionDataError(f"session[{key[:60]!r}] alone takes {size} bytes; the session data "
                               f"limit is {limit} bytes")
    return raw


def too_large(exc: DataTooLarge, sizes: Mapping[str, int]) -> SessionDataError:
    """The error an app sees when the whole session is over the cap: names the biggest key."""
    biggest = max(sizes, key=lambda k: sizes[k]) if sizes else None
    where = f"; the biggest key is {biggest[:60]!r} ({sizes[biggest]} bytes)" if biggest is not None else ""
    size = f"{exc.size} bytes" if exc.size >= 0 else "too large"
    return SessionDataError(f"session data would be {size}, over the {exc.limit}-byte limit{where}")


def decode_all(decode: Decode, stored: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Decoded values, and the keys whose stored value could not be read (Redis data is
    untrusted: another writer, or a value from an older serializer). Those are left out."""
    out: dict[str, Any] = {}
    bad: list[str] = []
    for key, raw in stored.items():
        try:
            out[key] = decode(raw)
        except Exception:  # any decoding failure: the key is unreadable, never a crash
            bad.append(key)
    return out, bad


class LazyDict(dict):  # type: ignore[type-arg]
    """A ``dict`` filled from Redis on first use (a request that never touches the session
    costs no Redis call). Writing a key does not load: ``session["k"] = v`` alone is saved
    without reading the session. Subclasses provide :meth:`_fetch`."""

    def __init__(self) -> None:
        super().__init__()
        self._loaded = False
        self._blind: set[str] = set()

    def _fetch(self) -> dict[str, Any]:  # pragma: no cover - per subclass
        raise NotImplementedError

    def _load(self) -> None:
        if self._loaded:
            return
        data = self._fetch()
        self._loaded = True
        for key, value in data.items():
            if key not in self._blind:
                dict.__setitem__(self, key, value)

    @property
    def loaded(self) -> bool:
        return self._loaded

    def __setitem__(self, key: str, value: Any) -> None:
        if not self._loaded:
            self._blind.add(key)
        dict.__setitem__(self, key, value)

    def __getitem__(self, key: str) -> Any:
        self._load()
        return dict.__getitem__(self, key)

    def __delitem__(self, key: str) -> None:
        self._load()
        dict.__delitem__(self, key)

    def __contains__(self, key: object) -> bool:
        self._load()
        return dict.__contains__(self, key)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return dict.__iter__(self)

    def __reversed__(self) -> Iterator[str]:
        self._load()
        return dict.__reversed__(self)  # type: ignore[no-any-return]

    def __len__(self) -> int:
        self._load()
        return dict.__len__(self)

    def __eq__(self, other: object) -> bool:
        self._load()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __or__(self, other: Any) -> dict[str, Any]:
        self._load()
        return dict(self.items()) | other

    def __ior__(self, other: Any) -> LazyDict:
        self.update(other)
        return self

    def get(self, key: str, default: Any = None) -> Any:
        self._load()
        return dict.get(self, key, default)

    def keys(self):  # type: ignore[no-untyped-def]
        self._load()
        return dict.keys(self)

    def values(self):  # type: ignore[no-untyped-def]
        self._load()
        return dict.values(self)

    def items(self):  # type: ignore[no-untyped-def]
        self._load()
        return dict.items(self)

    def pop(self, key: str, *default: Any) -> Any:
        self._load()
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._load()
        return dict.popitem(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._load()
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def copy(self) -> dict[str, Any]:
        self._load()
        return dict(dict.items(self))

    def __repr__(self) -> str:
        if not self._loaded:
            return f"<{type(self).__name__} (not loaded)>"
        return f"<{type(self).__name__} {dict.__repr__(self)}>"

    def __reduce__(self) -> Any:
        return (dict, (self.copy(),))


IMMUTABLE = frozenset((str, int, float, bool, type(None), bytes))
"""Value types whose encoding cannot change after it was computed (exact types only:
a subclass may carry state, a tuple may hold a list)."""

Known = dict[str, tuple[Any, str]]
"""Encodings already computed, by key: ``(value, encoded)``. A pure memo: it holds only
immutable values, and is used only while the session still holds that very object."""


def remember(known: Known, key: str, value: Any, raw: str) -> None:
    """Keep ``raw`` as ``value``'s encoding if ``value`` cannot change in place."""
    if type(value) in IMMUTABLE:
        known[key] = (value, raw)


def remember_all(known: Known, decoded: Mapping[str, Any], stored: Mapping[str, str]) -> None:
    for key, value in decoded.items():
        remember(known, key, value, stored[key])


def diff(current: Mapping[str, Any], stored: Mapping[str, str], encode: Encode, limit: int,
         *, only: set[str] | None = None, known: Known | None = None,
         ) -> tuple[dict[str, str], tuple[str, ...], dict[str, int]]:
    """What to write: changed keys with their encoded values, deleted keys, and every
    current key's size (for the error that names the biggest). ``only``: compare just
    these keys (a session written without being read). ``known``: encodings already
    computed (from the read, or from the assignment), so an unchanged or just-assigned
    scalar is not serialised again: the serializer is most of a save's client CPU."""
    sets: dict[str, str] = {}
    sizes: dict[str, int] = {}
    keys = only if only is not None else list(dict.keys(current))  # type: ignore[arg-type]
    for key in keys:
        check_key(key)
        value = dict.__getitem__(current, key)  # type: ignore[arg-type]
        memo = known.get(key) if known is not None else None
        if memo is not None and memo[0] is value:
            raw = memo[1]
            size = encoded_size(key, raw)
            if limit and size > limit:
                raw = encode_one(encode, key, value, limit)  # raises, naming the key
        else:
            raw = encode_one(encode, key, value, limit)
            size = encoded_size(key, raw)
        sizes[key] = size
        if stored.get(key) != raw:
            sets[key] = raw
    deletes = () if only is not None else tuple(k for k in stored if not dict.__contains__(current, k))
    return sets, deletes, sizes
