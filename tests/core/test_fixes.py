"""Fixes are text edits that, applied, give the expected story and leave other lines alone."""

import pytest

from storytransformer.config import Config

from storytransformer.edits import apply_edits, atomic_write, digest, StaleFileError

from .helpers import lint_texts

OTHER = "As a member, I want to pay fines online, so that my account is clear.\n"


def fixed(text: str, code: str, path: str = "b.txt", config: Config | None = None) -> str:
    _, findings = lint_texts({path: text}, config)
    (f,) = [f for f in findings if f.code == code]
    assert f.fix is not None
    return apply_edits(text, f.fix.edits)


@pytest.mark.parametrize("path, story, code, expected", [
    ("b.txt", "As a member, I want to see my loans (last two years), so that I remember.",
     "ST301", "As a member, I want to see my loans, so that I remember.\n# Note: last two years"),
    ("b.md", "- As a member, I want to see my loans (last two years), so that I remember.",
     "ST301", "- As a member, I want to see my loans, so that I remember.\n  - Note: last two years"),
    ("b.txt", "As a member, I want an email before a loan is due. So that I return it on time.",
     "ST402", "As a member, I want an email before a loan is due, so that I return it on time."),
    ("b.txt", "As a member, I want to renew loans, so that I keep books. It must be free.",
     "ST302", "As a member, I want to renew loans, so that I keep books.\n# Note: It must be free."),
    ("b.txt", "As a member, I want a waitlist, so that so they can seat me.",
     "ST303", "As a member, I want a waitlist, so that they can seat me."),
    ("b.txt", "As a host, I want a list of guests so that, so that we can see who came.",
     "ST303", "As a host, I want a list of guests so that we can see who came."),
])
def test_fix_results(path, story, code, expected):
    text = OTHER + story + "\n" + OTHER.replace("pay", "see")
    out = fixed(text, code, path)
    assert out == OTHER + expected + "\n" + OTHER.replace("pay", "see")


def test_uniform_fix_uses_the_dominant_markers():
    many = "".join(f"As a user, I want to do thing {i}.\n" for i in range(6))
    out = fixed(many + "As user, I'd like to export loans.\n", "ST501")
    assert out.splitlines()[-1] == "As a user, I want to export loans."


def test_duplicate_fix_deletes_only_its_own_line():
    text = OTHER + "As a member, I want to see fines.\n" + OTHER
    _, findings = lint_texts({"b.txt": text})
    (f,) = [f for f in findings if f.code == "ST601" and f.fix]
    assert apply_edits(text, f.fix.edits) == OTHER + "As a member, I want to see fines.\n"


def test_crlf_is_kept():
    text = "As a member, I want to see my loans (all), so that I remember.\r\nAs a user, I want to log in.\r\n"
    out = fixed(text, "ST301")
    assert out == "As a member, I want to see my loans, so that I remember.\r\n# Note: all\r\nAs a user, I want to log in.\r\n"


def test_atomic_write_refuses_a_file_changed_on_disk(tmp_path):
    p = tmp_path / "b.txt"
    p.write_text("old\n")
    seen = digest(p.read_bytes())
    p.write_text("someone else's edit\n")
    with pytest.raises(StaleFileError):
        atomic_write(str(p), "new\n", expected_digest=seen)
    assert p.read_text() == "someone else's edit\n"
    assert list(tmp_path.iterdir()) == [p]  # no temporary file left behind
    atomic_write(str(p), "new\n", expected_digest=digest(p.read_bytes()))
    assert p.read_text() == "new\n"


@pytest.mark.parametrize("story, expected", [
    ("As a member I want to pay, so that I owe nothing.", "As a member, I want to pay, so that I owe nothing."),
    ("As a Developer , I want to log better so that I debug.", "As a Developer, I want to log better, so that I debug."),
])
def test_marker_punctuation_fix(story, expected):
    on = Config()
    on.severity["ST502"] = "info"  # off by default (house style, not a QUS defect)
    assert fixed(story + "\n", "ST502", config=on) == expected + "\n"
    assert not [f for f in lint_texts({"b.txt": story + "\n"})[1] if f.code == "ST502"]


def test_atomic_write_new_file_gets_umask_permissions_and_keeps_existing_ones(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write(str(tmp_path / "new.txt"), "x\n")
        assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o644
        (tmp_path / "own.txt").write_text("y\n")
        os.chmod(tmp_path / "own.txt", 0o640)
        atomic_write(str(tmp_path / "own.txt"), "z\n")
        assert (tmp_path / "own.txt").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
