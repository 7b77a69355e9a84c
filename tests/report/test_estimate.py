"""Estimate arithmetic and its settings (no tokenizer: sizes are given)."""

import pytest

from storytransformer.config import ConfigError
from storytransformer.report.estimate import (Size, duration, estimate, hosted_cost, local_seconds, money,
                                              pass_tokens, prompts_needed)
from storytransformer.report.settings import EstimateSettings, HostedModel, from_section, load


def test_pass_tokens_add_the_prompt_to_every_story():
    size = Size(files=2, stories=10, words=150, tokens=200)
    assert pass_tokens(size, prompt_tokens=50, output_ratio=1.0) == (200 + 10 * 50, 200)
    assert pass_tokens(size, prompt_tokens=0, output_ratio=0.5) == (200, 100)


def test_local_time_is_prefill_plus_decode():
    assert local_seconds(1000, 100, prefill_per_s=500, decode_per_s=20) == pytest.approx(2 + 5)


def test_hosted_cost_per_million_tokens():
    assert hosted_cost(2_000_000, 500_000, input_per_million=0.15, output_per_million=0.60) == pytest.approx(0.30 + 0.30)


def test_prompts_needed_against_the_context_window():
    assert prompts_needed(backlog_tokens=7000, prompt_tokens=1000, context_window=8000) == 1
    assert prompts_needed(backlog_tokens=7001, prompt_tokens=1000, context_window=8000) == 2
    assert prompts_needed(backlog_tokens=70_000, prompt_tokens=1000, context_window=8000) == 10
    assert prompts_needed(backlog_tokens=10, prompt_tokens=9000, context_window=8000) is None


def test_estimate_puts_it_together():
    settings = EstimateSettings(prefill_tokens_per_s=100.0, decode_tokens_per_s=10.0, output_ratio=1.0,
                                hosted=(HostedModel("small", 1.0, 2.0, 1000), HostedModel("big", 10.0, 20.0, 100_000)))
    r = estimate(Size(1, 4, 40, 400), prompt_tokens=100, settings=settings, local_context=450)
    assert r["pass"] == {"input_tokens": 800, "output_tokens": 400, "prompt_tokens_per_story": 100, "output_ratio": 1.0}
    assert r["local"]["seconds"] == pytest.approx(800 / 100 + 400 / 10)
    assert r["local"]["fits_in_one_prompt"] is False and r["local"]["prompts_needed"] == 2  # 400 > 450 - 100
    small, big = r["hosted"]
    assert small["cost_usd"] == pytest.approx(800e-6 * 1 + 400e-6 * 2)
    assert big["cost_usd"] == pytest.approx(800e-6 * 10 + 400e-6 * 20)
    assert small["fits_in_one_prompt"] is True and big["fits_in_one_prompt"] is True
    assert r["size"] == {"files": 1, "stories": 4, "words": 40, "tokens": 400, "tokenizer": ""}


def test_a_backlog_too_big_for_a_window():
    settings = EstimateSettings(hosted=(HostedModel("tiny", 1, 1, 2048),))
    r = estimate(Size(1, 100, 3000, 5000), prompt_tokens=48, settings=settings)
    assert r["hosted"][0]["fits_in_one_prompt"] is False
    assert r["hosted"][0]["prompts_needed"] == 3  # 5000 / (2048 - 48) = 2.5
    assert r["local"]["fits_in_one_prompt"] is None  # no local context window known


def test_durations_and_money_read_well():
    assert duration(4.2) == "4.2 s"
    assert duration(75) == "1 min 15 s"
    assert duration(3 * 3600 + 5 * 60 + 9) == "3 h 05 min"
    assert money(1234.5) == "$1,234.50"
    assert money(0.00042) == "$0.0004"
    assert money(0) == "$0.00"


def test_settings_from_a_section():
    s = from_section({"decode-tokens-per-s": 12, "output_ratio": 0.5, "prompt_overhead_tokens": 30,
                      "hosted": [{"name": "m", "input_per_million": 1, "output_per_million": 2.5, "context_window": 4096}]},
                     "pyproject.toml")
    assert s.decode_tokens_per_s == 12.0 and s.output_ratio == 0.5 and s.prompt_overhead_tokens == 30
    assert s.hosted == (HostedModel("m", 1.0, 2.5, 4096),)
    assert s.prefill_tokens_per_s == EstimateSettings().prefill_tokens_per_s


@pytest.mark.parametrize("table, message", [
    ({"decode_tokens": 3}, "unknown key 'tool.storytransformer.estimate.decode_tokens'"),
    ({"decode_tokens_per_s": "fast"}, "'tool.storytransformer.estimate.decode_tokens_per_s' must be a number"),
    ({"decode_tokens_per_s": 0}, "must be greater than 0"),
    ({"prompt_overhead_tokens": 1.5}, "must be an integer"),
    ({"hosted": {"name": "x"}}, "must be an array of tables"),
    ({"hosted": [{"name": "x", "input_per_million": 1, "output_per_million": 1}]}, r"hosted\[0\]' needs context_window"),
    ({"hosted": [{"name": "x", "input_per_million": 1, "output_per_million": 1, "context_window": 9, "url": ""}]},
     r"unknown key 'tool.storytransformer.estimate.hosted\[0\].url'"),
])
def test_bad_settings_name_the_key(table, message):
    with pytest.raises(ConfigError, match=message) as e:
        from_section(table, "cfg.toml")
    assert "cfg.toml" in str(e.value)


def test_load_reads_the_estimate_section_beside_the_core_settings(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.storytransformer]\nmax_words = 30\n'
        '[tool.storytransformer.estimate]\ndecode_tokens_per_s = 7.5\n'
        '[[tool.storytransformer.estimate.hosted]]\nname = "house"\ninput_per_million = 0.5\n'
        'output_per_million = 1.5\ncontext_window = 32000\n')
    config, settings = load(None, tmp_path)
    assert config.max_words == 30
    assert settings.decode_tokens_per_s == 7.5
    assert [m.name for m in settings.hosted] == ["house"]


def test_load_without_a_file_gives_defaults(tmp_path):
    config, settings = load(None, tmp_path)
    assert settings == EstimateSettings()
    assert len(settings.hosted) >= 3
