"""Applying HQ watchlist updates on the car: verify, check order, build, save atomically, swap.

An update is accepted only if its signature verifies (when required), it parses, its version is
newer than the list in force (a delta must name the version in force as its base) and every entry
is valid. Only then is the new list written to disk (tmp file, fsync, os.replace) and swapped in;
any failure leaves the old list in force and on disk. The saved list is loaded again at start, so
the car keeps its last good list across restarts and reports its version.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from picar.i18n.message import N_
from picar.watchlist.builder import WatchlistBuilder
from picar.watchlist.entries import WatchlistError
from picar.watchlist.index import Watchlist
from picar.watchlist.matching import MatchOptions
from picar.watchlist.signing import SignatureError, load_public_key, open_envelope
from picar.watchlist.update import UpdateError, payload_text, read_update

log = logging.getLogger("picar.watchlist")

STATE_FILE = "watchlist.npz"
PREVIOUS_FILE = "watchlist.prev.npz"


@dataclass(frozen=True)
class UpdateResult:
    """What happened to one update; passed to the audit hook for accepted and rejected alike."""

    accepted: bool
    reason: str
    origin: str
    version: int  # version in force after this attempt
    update_version: int | None = None
    kind: str | None = None
    list_id: str = ""
    entries: int = 0  # entries in force after this attempt
    added: int = 0
    removed: int = 0
    replaced: int = 0
    signed: bool = False
    key_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict for the audit log and HQ status."""
        return dataclasses.asdict(self)


def _options(max_substitutions: int | Mapping[str, int] | None, max_edit: int | Mapping[str, int] | None,
             confusables: Sequence[str] | None) -> MatchOptions:
    defaults = MatchOptions()

    def per_list(value: int | Mapping[str, int] | None, default: Mapping[str, int]) -> Mapping[str, int]:
        if value is None:
            return default
        return {"default": value} if isinstance(value, int) else dict(value)

    return MatchOptions(
        confusables=tuple(confusables) if confusables is not None else defaults.confusables,
        max_substitutions=per_list(max_substitutions, defaults.max_substitutions),
        max_edit=per_list(max_edit, defaults.max_edit),
    )


def write_atomic(path: Path, write: Callable[[Any], None], previous: Path | None = None) -> None:
    """Write via `write(fileobj)` to a temp file, fsync, rename over `path`, fsync the directory.

    With `previous`, the old `path` is first renamed there, so a fallback copy always exists.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if previous is not None and path.exists():
        os.replace(path, previous)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class WatchlistStore:
    """The car's watchlist: the active `Watchlist`, its version, and how updates reach it.

    `current` may be read from any thread at any time; updates are applied one at a time and the
    new list is swapped in whole. `audit(result)` is called for every accepted or rejected update.
    """

    def __init__(self, dir: Path, public_key: Path | None, require_signature: bool = True,
                 options: MatchOptions | None = None,
                 audit: Callable[[UpdateResult], None] | None = None, *,
                 max_substitutions: int | Mapping[str, int] | None = None,
                 max_edit_distance: int | Mapping[str, int] | None = None,
                 confusables: Sequence[str] | None = None) -> None:
        """`options`, or the three matcher settings one by one (an int applies to every list)."""
        self.dir = Path(dir)
        self.require_signature = require_signature
        self.options = options or _options(max_substitutions, max_edit_distance, confusables)
        self.audit = audit
        self._public_key = load_public_key(public_key) if public_key is not None else None
        # What is wrong with the list in force, for the status HQ and the page see; None when all is well.
        # The page translates the sentence (a msgid) and shows the detail in brackets as it is.
        # A car without a key still starts (it reads plates and reports them) and refuses every update,
        # as check-config warns.
        self.problem: str | None = None
        self._no_key = require_signature and self._public_key is None
        if self._no_key:
            self.problem = N_("no public key configured: every watchlist update is refused")
            log.error("watchlist: %s", self.problem)
        self._current = WatchlistBuilder(self.options).build()
        self._swap_lock = threading.Lock()
        self._apply_lock = threading.Lock()
        self.applied_at: float | None = None

    @property
    def current(self) -> Watchlist:
        """The list in force (immutable; hold on to it for a whole read)."""
        with self._swap_lock:
            return self._current

    @property
    def version(self) -> int:
        """Version of the list in force; 0 before any update was accepted."""
        return self.current.version

    def load(self) -> bool:
        """Load the last good list saved in `dir` (falls back to the previous one); True if found."""
        with self._apply_lock:  # never interleave with an update being saved
            return self._load()

    def _load(self) -> bool:
        self.dir.mkdir(parents=True, exist_ok=True)
        unreadable: list[str] = []
        for name in (STATE_FILE, PREVIOUS_FILE):
            path = self.dir / name
            if not path.exists():
                continue
            try:
                with np.load(path, allow_pickle=False) as npz:
                    wl = Watchlist.from_arrays({k: npz[k] for k in npz.files}, self.options)
            except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
                log.error("watchlist: cannot load %s (%s); trying the previous copy", path, exc)
                unreadable.append(f"{name}: {exc}")
                continue
            self._swap(wl)
            self._set_problem(None)
            log.info("watchlist: loaded %s version %d, %d entries", path, wl.version, len(wl))
            return True
        if unreadable:
            # Empty is not the same as no list: say so until HQ's next update arrives (the retained list
            # comes again with every connection).
            self._set_problem(N_("saved list unreadable, no list in force until HQ sends one") + " (" +
                              "; ".join(unreadable) + ")")
            log.critical("watchlist: %s", self.problem)
        else:
            log.warning("watchlist: no saved list in %s; starting empty (version 0)", self.dir)
        return False

    def _set_problem(self, text: str | None) -> None:
        self.problem = text if text is not None or not self._no_key else (
            N_("no public key configured: every watchlist update is refused"))

    def apply_update(self, data: bytes, origin: str) -> UpdateResult:
        """Verify and apply one update (signed envelope bytes); never raises.

        The size is checked first, then the signature, and only then is the payload parsed. Every
        rejection, whatever raised it, is logged and passed to the audit hook.
        """
        with self._apply_lock:
            old = self.current
            try:
                result, new = self._prepare(data, origin, old)
                self._save(new)
            except (SignatureError, UpdateError, WatchlistError) as exc:
                result = UpdateResult(False, str(exc), origin, old.version, entries=len(old),
                                      list_id=old.list_id)
            except OSError as exc:
                result = UpdateResult(False, f"could not save the list: {exc}", origin, old.version,
                                      entries=len(old), list_id=old.list_id)
            except Exception as exc:  # a bug or resource limit: still a rejection, logged and audited
                log.exception("watchlist: unexpected error while applying an update from %s", origin)
                result = UpdateResult(False, f"internal error: {type(exc).__name__}: {exc}", origin,
                                      old.version, entries=len(old), list_id=old.list_id)
            else:
                self._swap(new)
                self._set_problem(None)
                self.applied_at = time.time()
        if result.accepted:
            log.info("watchlist: accepted %s v%s from %s: %s", result.kind, result.update_version,
                     origin, result.reason)
        else:
            log.warning("watchlist: rejected update from %s: %s (keeping version %d)", origin,
                        result.reason, result.version)
        if self.audit is not None:
            try:
                self.audit(result)
            except Exception:
                log.exception("watchlist: audit hook failed")
        return result

    def _prepare(self, data: bytes, origin: str, old: Watchlist) -> tuple[UpdateResult, Watchlist]:
        opened = open_envelope(data, self._public_key, self.require_signature)
        signed, key_id = opened.signed, opened.key_id
        text = payload_text(opened.payload)
        del opened  # the payload's bytes: from here on only its text is held, and its entries stream from it
        upd = read_update(text)
        del text
        if upd.version <= old.version:
            raise UpdateError(f"out of order: update version {upd.version} is not newer than the "
                              f"version in force {old.version}")
        if upd.kind == "delta":
            if upd.base_version != old.version:
                raise UpdateError(f"out of order: delta base_version {upd.base_version} does not match "
                                  f"the version in force {old.version}")
            if upd.list_id and old.list_id and upd.list_id != old.list_id:
                raise UpdateError(f"delta for list {upd.list_id!r}, the list in force is {old.list_id!r}")
            new, removed, replaced = old.with_changes(upd.entries, upd.remove, upd.version,
                                                      upd.list_id or old.list_id)
            added = len(upd.entries) - replaced
        else:
            new = Watchlist.from_records(upd.entries, self.options, upd.version, upd.list_id)
            added, removed, replaced = len(new), len(old), 0
        reason = (f"{upd.kind} v{upd.version} ({'signed' if signed else 'unsigned'}): "
                  f"{len(new)} entries, +{added} -{removed} ~{replaced}")
        result = UpdateResult(True, reason, origin, upd.version, upd.version, upd.kind, new.list_id,
                              len(new), added, removed, replaced, signed, key_id)
        return result, new

    def _save(self, wl: Watchlist) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        arrays = wl.to_arrays()
        write_atomic(self.dir / STATE_FILE, lambda f: _savez(f, arrays), self.dir / PREVIOUS_FILE)

    def _swap(self, wl: Watchlist) -> None:
        with self._swap_lock:
            self._current = wl


def _savez(f: Any, arrays: Mapping[str, np.ndarray]) -> None:
    np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds like allow_pickle
