"""What the restores bucket holds, listed so that a tick costs what changed, not what the bucket ever held.

Objects are ``org/<org>/project/<workspace>/restores/<ts>__<file>``: one *folder* per workspace. On a local
folder (the default bucket), a folder's modification time changes whenever a file is added, removed or
renamed into it (the way backup tools write: a temporary name, then renamed), so a tick stats the folders
(one ``stat`` per workspace) and lists only those whose time differs from the one recorded when they were
last listed (table ``restore_folders``). What a folder's time does not show — a file overwritten in place, a
key of the wrong shape outside any restores folder — the *sweep* finds: every tick also checks the next
:data:`SWEEP_PER_TICK` objects of the whole bucket, in key order from where the last tick stopped, and starts
again at the beginning once it reached the end. A tick's work is bounded whatever the bucket holds; a bucket
of N objects is swept in N / SWEEP_PER_TICK ticks (100,000 objects: 10 ticks).

On an object store (S3, GCS, Azure through fsspec) there is no folder time: every tick lists the bucket,
1,000 keys per request on S3. The database work stays bounded by the cursor (an unchanged listing is not
compared again); for a bucket of millions of restored files, expire handled objects with a lifecycle rule
or point ``BUCKET_URL`` at a prefix per restore.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from reindex_pipeline.ingest.restore_keys import printable_key

#: Objects of a local bucket a tick's sweep checks (beside the folders whose time changed).
SWEEP_PER_TICK = 10_000
#: Seconds a local file must have been left unchanged before it is recorded (the default of the Bucket
#: resource's ``settle_seconds``): one still being written in place (a copy without a temporary name) would
#: be recorded, and ingested, at every size it passes through.
SETTLE_S = 5.0

Object = tuple[str, str, int | None]  # (key, fingerprint, size)


@dataclass
class Listing:
    objects: list[Object] = field(default_factory=list)  # sorted by key, each key once
    folders: dict[str, int] = field(default_factory=dict)  # folder key -> its mtime (ns) when listed
    full: bool = True  # every object of the bucket (an object store's listing)
    swept_to: str | None = None  # local: the last key the sweep checked; None once it reached the end
    unreadable: list[str] = field(default_factory=list)  # local folders that could not be listed, and why


def fingerprint(info: dict) -> str:
    """What tells two versions of an object apart: its etag, or its size and modification time."""
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if etag:
        return f"etag:{str(etag).strip(chr(34))}"
    changed = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("created")
    return f"size:{info.get('size')}:mtime:{changed}"


def list_bucket(
    fs,
    root: str,
    known: dict[str, int],
    sweep_after: str | None = None,
    sweep: int = SWEEP_PER_TICK,
    settle: float = SETTLE_S,
) -> Listing:
    """On a local folder: the objects of the restores folders whose time differs from ``known``'s, and the
    sweep's next ``sweep`` objects after the key ``sweep_after`` (None: from the beginning), less those
    changed in the last ``settle`` seconds. On an object store: every object."""
    local = _local_root(fs, root)
    if local is None:
        return _list_any(fs, root)
    unreadable: list[str] = []
    folders = _folder_times(local, unreadable)
    changed = {f: t for f, t in folders.items() if known.get(f) != t}
    objects = {o[0]: o for folder in sorted(changed) for o in _walk(local / folder, folder + "/", unreadable)}
    swept, swept_to = sweep_slice(local, sweep_after, sweep, unreadable)
    objects.update((o[0], o) for o in swept)
    # A file still being written is left for a later tick: its folder's time is not recorded, so the folder
    # is listed again (a stray key is seen again by the next sweep).
    settled_before = time.time() - settle
    unsettled = {k for k, fp, _ in objects.values() if _mtime(fp) > settled_before}
    folders = {f: t for f, t in changed.items() if not any(k.startswith(f + "/") for k in unsettled)}
    # a name that is not UTF-8 is listed as text the database takes (and rejected for it), not as the tick's end
    kept = sorted((printable_key(k), fp, size) for k, (_, fp, size) in objects.items() if k not in unsettled)
    unreadable = sorted(set(unreadable))
    return Listing(kept, folders, full=False, swept_to=swept_to, unreadable=unreadable)


def _mtime(fp: str) -> float:
    """The modification time a local fingerprint (``size:<n>:mtime:<t>``) holds."""
    return float(fp.rsplit(":", 1)[1])


def sweep_slice(
    root: Path, after: str | None, limit: int, unreadable: list[str] | None = None
) -> tuple[list[Object], str | None]:
    """Up to ``limit`` objects under ``root`` that come after the key ``after`` in key order (path parts
    compared one by one), and the last key taken, or None when the walk reached the end of the bucket. Only
    the objects taken are stat'ed; a folder wholly before ``after`` is not opened; one that cannot be read
    is passed over and named in ``unreadable``."""
    if limit <= 0:
        return [], after
    cursor = tuple(after.split("/")) if after else ()
    out: list[Object] = []

    def visit(folder: str, parts: tuple[str, ...]) -> bool:
        try:
            with os.scandir(folder) as entries:
                ordered = sorted(entries, key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return True
        except OSError as exc:
            _unreadable(unreadable, "/".join(parts), exc)
            return True
        for entry in ordered:
            here = (*parts, entry.name)
            if entry.is_dir(follow_symlinks=False):
                if here < cursor[: len(here)]:
                    continue  # every key below it comes before the cursor
                if not visit(entry.path, here):
                    return False
            elif here > cursor and (found := _object(entry, "/".join(here))):
                out.append(found)
                if len(out) >= limit:
                    return False
        return True

    finished = visit(str(root), ())
    return out, None if finished else out[-1][0]


def _local_root(fs, root: str) -> Path | None:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return Path(root) if "file" in protocol or "local" in protocol else None


def _list_any(fs, root: str) -> Listing:
    if not fs.exists(root):
        return Listing()
    out = []
    for path, info in fs.find(root, detail=True).items():
        if info.get("type") == "directory":
            continue
        key = path[len(root) :].lstrip("/") if path.startswith(root) else path
        out.append((key, fingerprint(info), info.get("size")))
    return Listing(sorted(out))


def _folder_times(root: Path, unreadable: list[str]) -> dict[str, int]:
    """``org/<org>/project/<ws>/restores`` -> its mtime in ns, for every such folder (a name that is not
    UTF-8 is no org or workspace id: the sweep finds, and rejects, the files under it)."""
    out: dict[str, int] = {}
    for org in _dirs(root / "org", "org", unreadable):
        for project in _dirs(Path(org.path) / "project", f"org/{org.name}/project", unreadable):
            for entry in _dirs(Path(project.path), f"org/{org.name}/project/{project.name}", unreadable):
                key = f"org/{org.name}/project/{project.name}/restores"
                if entry.name == "restores" and printable_key(key) == key:
                    out[key] = entry.stat(follow_symlinks=False).st_mtime_ns
    return out


def _unreadable(found: list[str] | None, key: str, exc: OSError) -> None:
    if found is not None:
        found.append(f"{printable_key(key) or '(the bucket)'}: {exc.strerror or exc}")


def _dirs(path: Path, key: str, unreadable: list[str]) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return [e for e in entries if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        _unreadable(unreadable, key, exc)
        return []


def _walk(folder: Path, prefix: str, unreadable: list[str] | None = None) -> list[Object]:
    """Every file under ``folder``, keyed ``prefix`` + its path below ``folder``."""
    out = []
    stack = [(str(folder), prefix)]
    while stack:
        path, keys = stack.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((entry.path, f"{keys}{entry.name}/"))
                    elif found := _object(entry, keys + entry.name):
                        out.append(found)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            _unreadable(unreadable, keys.rstrip("/"), exc)
    return sorted(out)


def _object(entry: os.DirEntry, key: str) -> Object | None:
    """A file fingerprinted as fsspec's local listing does (its ``mtime`` is the float ``st_mtime``), so
    objects recorded before are recognised; a symlink has its target's size. None if it is gone."""
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:  # gone, or not ours to read: the ingest run would say so, but it cannot be fingerprinted
        return None
    size = st.st_size
    if entry.is_symlink():
        try:
            size = entry.stat(follow_symlinks=True).st_size
        except OSError:
            size = 0
    return key, fingerprint({"size": size, "mtime": st.st_mtime}), size
