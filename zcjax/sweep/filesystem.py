"""Which file system a path lives on, so the result store can pick a journal mode that is safe.

SQLite's WAL journal needs shared memory (a memory-mapped ``-shm`` file) and POSIX locks that
work between processes; network and FUSE file systems (NFS, SMB, Google Drive on Colab,
gcsfuse, sshfs, ...) do not provide them reliably, and a WAL store there can lose or corrupt
commits. The rollback journal (``DELETE``) keeps every committed row in the main file, and works
wherever files do.

Detection reads ``/proc/self/mountinfo`` (Linux, which includes Colab). Elsewhere the type is
unknown and the store assumes a local disk; ``ZCJAX_STORE_JOURNAL`` or the store's
``journal_mode=`` argument choose explicitly.
"""

from __future__ import annotations

import os

__all__ = ["NETWORK_FILESYSTEMS", "filesystem_type", "is_network_filesystem"]

#: File system types (as in ``/proc/self/mountinfo``) on which WAL is not safe. Any ``fuse.*``
#: type (``fuse.drive`` on Colab, ``fuse.gcsfuse``, ``fuse.sshfs``, ...) counts as well.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "9p", "fuse", "fuseblk", "ceph",
    "glusterfs", "lustre", "gpfs", "afs", "davfs", "ncpfs", "virtiofs", "vboxsf", "prl_fs",
    "vmhgfs", "beegfs", "orangefs", "ocfs2", "gfs2",
})


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def filesystem_type(path: "str | os.PathLike[str]", mountinfo: str = "/proc/self/mountinfo"
                    ) -> str | None:
    """The type of the file system holding ``path`` (e.g. ``"ext4"``, ``"fuse.drive"``).

    ``path`` need not exist (symbolic links in its existing part are resolved). ``None`` where
    the mount table cannot be read (not Linux).
    """
    target = os.path.realpath(os.path.abspath(os.fspath(path)))
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    best, best_type = "", None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right.split():
            continue
        mount = _unescape(fields[4])
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):  # the last, longest match is the visible one
            best, best_type = mount, right.split()[0]
    return best_type


def is_network_filesystem(path: "str | os.PathLike[str]", **kwargs) -> bool:
    """Whether ``path`` is on a network or FUSE file system (see :data:`NETWORK_FILESYSTEMS`)."""
    kind = filesystem_type(path, **kwargs)
    return kind is not None and (kind in NETWORK_FILESYSTEMS or kind.startswith("fuse."))
