"""Configuration errors name the file and the key; good values take effect."""

import pytest

from storytransformer.config import ConfigError, load_config


def write(tmp_path, name, body):
    p = tmp_path / name
    p.write_text(body)
    return p


def test_pyproject_table_is_found_from_a_subdirectory(tmp_path):
    write(tmp_path, "pyproject.toml", '[tool.storytransformer]\nmax-words = 30\nignore = ["ST8"]\n')
    (tmp_path / "stories").mkdir()
    cfg = load_config(start=tmp_path / "stories")
    assert cfg.max_words == 30 and cfg.ignore == ["ST8"]
    assert cfg.source.endswith("pyproject.toml")


@pytest.mark.parametrize("body, message", [
    ("colour = 1\n", "unknown key 'colour'"),
    ("max_words = 'ten'\n", "'max_words' must be int"),
    ("[severity]\nST701 = 'loud'\n", "severity.ST701' must be one of"),
    ("ignore = ['ST999']\n", "unknown rule 'ST999'"),
    ("[similarity]\noverlap_threshold = 0.95\nduplicate_threshold = 0.9\n", "thresholds"),
    ("[engine]\nquantization = 'int3'\n", "engine.quantization"),
    ("template = 'As a {persona}'\n", "template"),
    ("include = 'x'\n", "'include' must be a list of str"),
    ("= broken", "invalid TOML"),
])
def test_bad_values_name_file_and_key(tmp_path, body, message):
    p = write(tmp_path, ".storytransformer.toml", body)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert message in str(e.value) and str(p) in str(e.value)


def test_estimate_section_is_checked_by_its_owner(tmp_path):
    p = write(tmp_path, ".storytransformer.toml", "[estimate]\nbogus = 1\n")
    with pytest.raises(ConfigError, match="estimate.bogus"):
        load_config(p)
