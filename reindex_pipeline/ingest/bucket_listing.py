"""What the restores bucket holds, listed so that a tick costs what changed, not what the bucket ever held.

Objects are ``org/<org>/project/<workspace>/restores/<ts>__<file>``: one *folder* per workspace. On a local
folder (the default bucket), a folder's modification time changes whenever a file is added, removed or
renamed into it (the way backup tools write: a temporary name, then renamed), so a tick stats the folders
(one ``stat`` per workspace) and lists only those whose time differs from the one recorded when they were
last listed (table ``restore_folders``). A full listing — every object, wherever it lies, so a key of the
wrong shape is still seen and rejected, and a file overwritten in place is seen again — runs on the first
tick after a start and every ``FULL_LISTING_S``.

On an object store (S3, GCS, Azure through fsspec) there is no folder time: every tick lists the bucket,
1,000 keys per request on S3. The database work stays bounded by the cursor (an unchanged listing is not
compared again); for a bucket of millions of restored files, expire handled objects with a lifecycle rule
or point ``BUCKET_URL`` at a prefix per restore.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: Seconds between two full listings of a local bucket (the ticks in between list changed folders only).
FULL_LISTING_S = 600


@dataclass
class Listing:
    objects: list[tuple[str, str, int | None]] = field(default_factory=list)  # (key, fingerprint, size), sorted
    folders: dict[str, int] = field(default_factory=dict)  # folder key -> its mtime (ns) when listed
    full: bool = True


def fingerprint(info: dict) -> str:
    """What tells two versions of an object apart: its etag, or its size and modification time."""
    etag = info.get("ETag") or info.get("etag") or info.get("md5Hash")
    if etag:
        return f"etag:{str(etag).strip(chr(34))}"
    changed = info.get("mtime") or info.get("LastModified") or info.get("updated") or info.get("created")
    return f"size:{info.get('size')}:mtime:{changed}"


def list_bucket(fs, root: str, known: dict[str, int] | None) -> Listing:
    """Every object (``known`` None: a full listing), or on a local folder only the objects of folders whose
    time differs from ``known``'s."""
    local = _local_root(fs, root)
    if local is None:
        return _list_any(fs, root)
    if known is None:
        objects = _walk(local, local)
        return Listing(objects, _folder_times(local), full=True)
    folders = _folder_times(local)
    changed = {f: t for f, t in folders.items() if known.get(f) != t}
    objects = [o for folder in sorted(changed) for o in _walk(local / folder, local)]
    return Listing(sorted(objects), changed, full=False)


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


def _folder_times(root: Path) -> dict[str, int]:
    """``org/<org>/project/<ws>/restores`` -> its mtime in ns, for every such folder."""
    out: dict[str, int] = {}
    for org in _dirs(root / "org"):
        for project in _dirs(Path(org.path) / "project"):
            for entry in _dirs(Path(project.path)):
                if entry.name == "restores":
                    out[f"org/{org.name}/project/{project.name}/restores"] = entry.stat(
                        follow_symlinks=False
                    ).st_mtime_ns
    return out


def _dirs(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as entries:
            return [e for e in entries if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _walk(folder: Path, root: Path) -> list[tuple[str, str, int | None]]:
    """Every file under ``folder``, keyed relative to ``root``, fingerprinted as fsspec's local listing does
    (its ``mtime`` is the float ``st_mtime``), so objects recorded before are recognised."""
    out = []
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                        continue
                    st = entry.stat(follow_symlinks=False)
                    size = st.st_size
                    if entry.is_symlink():
                        try:
                            size = entry.stat(follow_symlinks=True).st_size
                        except OSError:
                            size = 0
                    key = Path(entry.path).relative_to(root).as_posix()
                    out.append((key, fingerprint({"size": size, "mtime": st.st_mtime}), size))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(out)
