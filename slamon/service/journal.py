"""Writes the store has not taken yet, on local disk: a store outage, a stop while the store is
away or a crash loses none of them.

One file per write, `<seq>.npz` (the results as arrays, everything else as JSON), written to a
temporary name, fsynced and renamed, so a file is either whole or absent. The directory remembers
which store its writes belong to (device keys mean nothing in another database) and its own id,
under which the store records the last write applied: replaying after a crash applies each write
exactly once.
"""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from slamon.canonical import exclusion_from_dict, exclusion_to_dict
from slamon.engine.timeline import Carry, Outage, Timeline, Transition
from slamon.errors import StoreError
from slamon.model import DeviceState, Event
from slamon.service.evidence import Evidence, HorizonMove, TailWrite
from slamon.store import ResultColumns

logger = logging.getLogger(__name__)

FORMAT = 1
_COLUMNS = ("device", "kind", "time", "ok", "defects", "rtt")


class JournalError(StoreError):
    """The journal cannot be used: unreadable, or it belongs to another store."""


class Journal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._id: str | None = None

    @property
    def id(self) -> str:
        """This journal's id: the store keeps the last write applied from it under this name."""
        if self._id is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / "journal_id"
            try:
                self._id = path.read_text(encoding="ascii").strip()
            except FileNotFoundError:
                self._id = uuid.uuid4().hex
                _write_atomic(path, self._id.encode())
        return self._id

    @property
    def progress_key(self) -> str:
        return f"journal:{self.id}"

    def claim(self, store_id: str) -> None:
        """Tie the journal to a store; refuse a journal that holds writes of another store."""
        path = self.directory / "store_id"
        try:
            owner = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            owner = None
        if owner is not None and owner != store_id and self.pending():
            raise JournalError(
                f"the journal {self.directory} holds {len(self.pending())} writes of another store "
                f"({owner}); this database is store {store_id}. Point `database` at the store they "
                "belong to, or move the journal away to start without them"
            )
        if owner != store_id:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, store_id.encode())

    def pending(self) -> list[tuple[int, Path]]:
        """(seq, file) of every write in the journal, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob("*.npz"):
            try:
                found.append((int(path.stem), path))
            except ValueError:
                continue
        return sorted(found)

    def save(self, seq: int, evidence: Evidence) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{seq:016d}.npz"
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {"meta": np.frombuffer(_meta(seq, evidence), dtype=np.uint8)}
        if evidence.results is not None:
            arrays.update({name: getattr(evidence.results, name) for name in _COLUMNS})
        np.savez(buffer, **arrays)
        _write_atomic(path, buffer.getvalue())
        return path

    def load(self, path: Path) -> tuple[int, Evidence]:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                results = (
                    ResultColumns(*(np.array(data[name]) for name in _COLUMNS))
                    if "device" in data.files
                    else None
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise JournalError(f"{path}: not a readable journal entry ({exc})") from None
        if meta.get("format") != FORMAT:
            raise JournalError(f"{path}: journal format {meta.get('format')!r}, this slamon reads {FORMAT}")
        return int(meta["seq"]), _evidence(meta, results)

    def drop(self, path: Path) -> None:
        path.unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _meta(seq: int, e: Evidence) -> bytes:
    doc = {
        "format": FORMAT,
        "seq": seq,
        "what": e.what,
        "at": e.at,
        "part": e.part,
        "tails": [
            {
                "key": w.key,
                "since": w.since,
                "params": w.params,
                "firm_until": w.tail.firm_until,
                "settled": w.tail.settled,
                "transitions": [[x.at, x.state.value] for x in w.tail.transitions],
                "outages": [o.row() for o in w.tail.outages],
            }
            for w in e.tails
        ],
        "moves": [[m.key, m.horizon, m.last_failure] for m in e.moves],
        "resumes": [
            [k, since, c.reach_down, c.reach_last, c.video_bad, c.last_failure] for k, c, since in e.resumes
        ],
        "events": [[x.at, x.kind, x.subject, x.body] for x in e.events],
        "proposals": [exclusion_to_dict(x) for x in e.proposals],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _evidence(meta: dict[str, Any], results: ResultColumns | None) -> Evidence:
    tails = tuple(
        TailWrite(
            t["key"],
            Timeline(
                tuple(Transition(at, DeviceState(state)) for at, state in t["transitions"]),
                tuple(Outage.from_row(row) for row in t["outages"]),
                t["firm_until"],
                t["settled"],
            ),
            t["since"],
            t["params"],
        )
        for t in meta["tails"]
    )
    return Evidence(
        what=meta["what"],
        at=meta["at"],
        results=results,
        part=meta["part"],
        tails=tails,
        moves=tuple(HorizonMove(k, h, lf) for k, h, lf in meta["moves"]),
        resumes=tuple((k, Carry(*carry), since) for k, since, *carry in meta["resumes"]),
        events=tuple(Event(at, kind, subject, body) for at, kind, subject, body in meta.get("events", ())),
        proposals=tuple(exclusion_from_dict(x) for x in meta.get("proposals", ())),
    )
