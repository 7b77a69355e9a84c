"""``check --fix`` and ``-o`` write into files, never around them.

Each test runs the real CLI on real files: symbolic links are not written through (unless
``--follow-symlinks``), devices and FIFOs are not replaced, owner, mode and hard links are
kept, a read-only file is not modified (not even by root), a byte-order mark and the line
endings survive, only our own temporary files are cleaned up, and a full disk names the file.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

BAD = "As a member, I want to see my loans (last two years), so that I remember.\n"  # ST301: --fix moves the aside
FIXED = "As a member, I want to see my loans, so that I remember.\n# Note: last two years\n"
GOOD = "As a librarian, I want to add a book, so that members can borrow it.\n"
IS_ROOT = os.geteuid() == 0


def st(*args: str, cwd: Path, stdin=subprocess.DEVNULL, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "STORYTRANSFORMER_CACHE_DIR": str(cwd / ".cache-test")}
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, stdin=stdin, timeout=timeout)


def fix(*paths: str, cwd: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return st("check", "--fix", "--no-semantic", "--no-cache", *extra, *paths, cwd=cwd)


# -- symbolic links ----------------------------------------------------------

def test_fix_does_not_write_through_a_symlink_unless_asked(tmp_path):
    (tmp_path / "real.txt").write_text(BAD + GOOD)
    os.symlink("real.txt", tmp_path / "link.txt")
    r = fix("link.txt", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "link.txt: is a symbolic link" in r.stderr and "--follow-symlinks" in r.stderr
    assert (tmp_path / "link.txt").is_symlink() and os.readlink(tmp_path / "link.txt") == "real.txt"
    assert (tmp_path / "real.txt").read_text() == BAD + GOOD  # nothing changed

    r = fix("link.txt", cwd=tmp_path, extra=("--follow-symlinks",))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "link.txt").is_symlink()  # still a link ...
    assert (tmp_path / "real.txt").read_text() == FIXED + GOOD  # ... and its target fixed


def test_output_does_not_replace_a_symlink_unless_asked(tmp_path):
    (tmp_path / "b.txt").write_text(GOOD)
    (tmp_path / "report.txt").write_text("old report\n")
    os.symlink("report.txt", tmp_path / "latest.txt")
    r = st("check", "--no-semantic", "--no-cache", "-o", "latest.txt", "b.txt", cwd=tmp_path)
    assert r.returncode == 2 and "latest.txt: is a symbolic link" in r.stderr, r.stderr
    assert (tmp_path / "latest.txt").is_symlink() and (tmp_path / "report.txt").read_text() == "old report\n"

    r = st("check", "--no-semantic", "--no-cache", "--follow-symlinks", "-o", "latest.txt", "b.txt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "latest.txt").is_symlink()
    assert (tmp_path / "report.txt").read_text() != "old report\n"


# -- not regular files -------------------------------------------------------

def test_output_does_not_replace_a_fifo(tmp_path):
    (tmp_path / "b.txt").write_text(GOOD)
    os.mkfifo(tmp_path / "pipe")
    r = st("check", "--no-semantic", "--no-cache", "-o", "pipe", "b.txt", cwd=tmp_path, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "pipe: not a regular file (FIFO)" in r.stderr
    assert stat.S_ISFIFO(os.lstat(tmp_path / "pipe").st_mode)


def test_output_does_not_replace_a_character_device(tmp_path):
    if not IS_ROOT:
        pytest.skip("making a character device needs root")
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # like /dev/null
    except OSError as e:
        pytest.skip(f"cannot make a character device here: {e}")
    (tmp_path / "b.txt").write_text(GOOD)
    r = st("check", "--no-semantic", "--no-cache", "-o", "null", "b.txt", cwd=tmp_path)
    assert r.returncode == 2 and "null: not a regular file (character device)" in r.stderr, r.stderr
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


# -- owner, mode, links ------------------------------------------------------

def test_fix_keeps_hard_links(tmp_path):
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "backlog.txt").write_text(BAD + GOOD)
    os.link(tmp_path / "team" / "backlog.txt", tmp_path / "mirror.txt")  # outside the checked folder
    r = fix("team", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    a, b = os.stat(tmp_path / "team" / "backlog.txt"), os.stat(tmp_path / "mirror.txt")
    assert (a.st_ino, a.st_nlink) == (b.st_ino, 2)  # still one file with two names
    assert (tmp_path / "mirror.txt").read_text() == FIXED + GOOD


def test_fix_keeps_another_users_owner_and_mode(tmp_path):
    if not IS_ROOT:
        pytest.skip("giving a file to another user needs root")
    p = tmp_path / "theirs.txt"
    p.write_text(BAD + GOOD)
    os.chown(p, 65534, 65534)  # nobody:nogroup
    os.chmod(p, 0o640)
    ino = p.stat().st_ino
    r = fix("theirs.txt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    s = p.stat()
    assert (s.st_uid, s.st_gid, stat.S_IMODE(s.st_mode), s.st_ino) == (65534, 65534, 0o640, ino)
    assert p.read_text() == FIXED + GOOD


def test_fix_keeps_the_mode_of_the_users_own_file(tmp_path):
    p = tmp_path / "mine.txt"
    p.write_text(BAD + GOOD)
    os.chmod(p, 0o604)
    assert fix("mine.txt", cwd=tmp_path).returncode == 0
    assert stat.S_IMODE(p.stat().st_mode) == 0o604 and p.read_text() == FIXED + GOOD


def test_fix_does_not_modify_a_read_only_file(tmp_path):
    p = tmp_path / "frozen.txt"
    p.write_text(BAD + GOOD)
    os.chmod(p, 0o444)
    r = fix("frozen.txt", cwd=tmp_path)  # as root too: root could write it, but the mode says no
    assert r.returncode == 2, r.stderr
    assert "frozen.txt: is read-only for you (mode 0444" in r.stderr
    assert p.read_text() == BAD + GOOD and stat.S_IMODE(p.stat().st_mode) == 0o444


def test_a_new_output_file_gets_normal_permissions(tmp_path):
    (tmp_path / "b.txt").write_text(GOOD)
    env_umask = "umask 022 && "
    r = subprocess.run(env_umask + f"{sys.executable} -m storytransformer check --no-semantic --no-cache -o out.txt b.txt",
                       shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o644


# -- content: byte-order mark, line endings ----------------------------------

def test_fix_keeps_a_utf8_bom(tmp_path):
    p = tmp_path / "bom.txt"
    p.write_bytes(b"\xef\xbb\xbf" + (BAD + GOOD).encode())
    assert fix("bom.txt", cwd=tmp_path).returncode == 0
    assert p.read_bytes() == b"\xef\xbb\xbf" + (FIXED + GOOD).encode()


@pytest.mark.parametrize("nl", ["\r", "\r\n", "\n"], ids=["CR", "CRLF", "LF"])
def test_fix_keeps_the_line_endings(tmp_path, nl):
    p = tmp_path / "b.txt"
    second = BAD.replace("loans", "holds")
    p.write_bytes((BAD + GOOD + second).replace("\n", nl).encode())
    r = fix("b.txt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert p.read_bytes() == (FIXED + GOOD + FIXED.replace("loans", "holds")).replace("\n", nl).encode()


# -- temporary files and errors ----------------------------------------------

def test_stale_cleanup_removes_only_our_temporaries(tmp_path):
    (tmp_path / "b.txt").write_text(BAD + GOOD)
    users = [".b.txt.backup.tmp", ".b.txt.abc123.tmp", ".b.txt.storytransformer.tmp"]
    ours = ".b.txt.storytransformer-k2j4x9q_.tmp"
    for name in users + [ours]:
        (tmp_path / name).write_text("a user's notes\n")
        old = time.time() - 3600
        os.utime(tmp_path / name, (old, old))
    assert fix("b.txt", cwd=tmp_path).returncode == 0
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".b.txt"))
    assert left == sorted(users)


def test_a_full_disk_names_the_file_and_changes_nothing(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root): the full-disk error is not reproduced")
    try:
        p = mnt / "backlog.txt"
        p.write_text(BAD + GOOD)
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)  # fill the file system to the last block
        try:
            while True:
                os.write(fd, b"x" * 512)
        except OSError:
            pass
        finally:
            os.close(fd)
        r = fix(str(p), cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        assert f"{p}: cannot" in r.stderr and "No space left on device" in r.stderr
        assert p.read_text() == BAD + GOOD
        assert sorted(x.name for x in mnt.iterdir()) == ["backlog.txt", "filler"]
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_directory_that_cannot_be_written_names_the_file(tmp_path):
    if IS_ROOT:
        pytest.skip("root may write any directory; the full-disk test covers the error naming as root")
    d = tmp_path / "locked"
    d.mkdir()
    (d / "b.txt").write_text(BAD + GOOD)
    os.chmod(d, 0o555)
    try:
        r = fix(str(d / "b.txt"), cwd=tmp_path)
        assert r.returncode == 2 and f"{d / 'b.txt'}: cannot" in r.stderr, r.stderr
        assert (d / "b.txt").read_text() == BAD + GOOD
    finally:
        os.chmod(d, 0o755)


# -- the writer itself ---------------------------------------------------------

def test_in_place_write_checks_the_content_right_before_writing(tmp_path):
    from storytransformer.edits import StaleFileError, atomic_write, digest

    p = tmp_path / "b.txt"
    p.write_text("old\n")
    os.link(p, tmp_path / "other-name.txt")  # a hard link: written in place
    seen = digest(p.read_bytes())
    (tmp_path / "other-name.txt").write_text("someone else's edit\n")
    with pytest.raises(StaleFileError):
        atomic_write(str(p), "new\n", expected_digest=seen)
    assert p.read_text() == "someone else's edit\n"
    atomic_write(str(p), "new\n", expected_digest=digest(p.read_bytes()))
    assert (tmp_path / "other-name.txt").read_text() == "new\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["b.txt", "other-name.txt"]  # no temporary left


def test_write_errors_name_the_file(tmp_path):
    from storytransformer.edits import WriteError, atomic_write

    with pytest.raises(WriteError) as e:
        atomic_write(str(tmp_path / "no-such-dir" / "b.txt"), "x\n")
    assert str(e.value).startswith(str(tmp_path / "no-such-dir" / "b.txt") + ": ")
