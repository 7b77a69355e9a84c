"""Configuration from ``[tool.storytransformer]`` in pyproject.toml or ``.storytransformer.toml``.

Every key is checked: an unknown key or a value of the wrong type raises
:class:`ConfigError` naming the file and the key, so a typo never silently
turns a rule off.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_FILES = (".storytransformer.toml", "pyproject.toml")
SEVERITIES = ("error", "warning", "info", "hint", "off")

DEFAULT_VAGUE_WORDS = (
    "fast", "quick", "quickly", "easy", "easily", "simple", "simply", "user-friendly", "user friendly",
    "intuitive", "efficient", "efficiently", "flexible", "robust", "seamless", "seamlessly",
    "appropriate", "adequate", "adequately", "sufficient", "optimal", "optimized", "better",
    "improved", "nice", "good", "pretty", "various", "several", "etc",
    "etc.", "and so on", "and/or", "as needed", "as appropriate", "if possible", "if necessary",
    "where possible", "as much as possible", "state-of-the-art", "modern", "reasonable",
    "properly", "significant", "powerful",
)
DEFAULT_SOLUTION_WORDS = (
    "button", "dropdown", "drop-down", "checkbox", "check box", "radio button", "popup", "pop-up",
    "modal", "tooltip", "hyperlink", "textbox", "text box", "text field", "scrollbar", "icon",
    "click", "red", "green", "blue", "yellow", "orange", "grey", "gray", "purple", "bold", "font",
    "pixel", "pixels", "mysql", "postgres", "postgresql", "mongodb", "oracle", "database table",
    "rest api", "ajax", "javascript", "react", "angular", "jquery", "css",
    "java", "python", "php", "ruby", "django", "drupal", "wordpress", "solr", "elasticsearch",
    "redis", "docker", "kubernetes", "aws", "s3", "cron", "api endpoint", "stored procedure",
)


class ConfigError(ValueError):
    """A bad configuration value; the message names the file and the key."""


@dataclass
class CsvConfig:
    story_columns: list[str] = field(default_factory=lambda: ["User Story", "Story", "Summary", "Title", "Name", "Description"])
    id_columns: list[str] = field(default_factory=lambda: ["Issue key", "Key", "ID", "Id", "Work Item ID", "Story ID"])
    acceptance_columns: list[str] = field(default_factory=lambda: ["Acceptance Criteria", "Microsoft.VSTS.Common.AcceptanceCriteria"])


@dataclass
class SimilarityConfig:
    """Semantic duplicate detection (embedding model and thresholds)."""

    enabled: bool = True
    model: str = ""  # a local sentence-transformers directory; "" = the packaged all-MiniLM-L6-v2
    duplicate_threshold: float = 0.85  # tuned on labelled pairs: docs/similarity.md
    overlap_threshold: float = 0.60
    top_k: int = 5
    cache: bool = True
    # Added by the similarity index (docs/similarity.md explains and tunes each one).
    same_goal_threshold: float = 0.70  # another role wanting the same means (ST605)
    role_threshold: float = 0.70  # roles at least this similar count as the same role
    ends_threshold: float = 0.70  # same role and means but ends below this: another benefit (overlap)
    lexical_weight: float = 0.3  # share of content-lemma overlap in the means score
    max_neighbours: int = 20  # candidate pairs kept per story (bounds memory on repetitive backlogs)
    device: str = "cpu"  # cpu | cuda | cuda:N | mps
    batch_size: int = 64
    quantize: str = "none"  # none | int8 (dynamic int8 linear layers on the CPU: faster cold embedding)


@dataclass
class EngineConfig:
    """The language model engine."""

    model: str = ""  # "" = the packaged SmolLM2-135M-Instruct; or a directory, a .gguf file, a hub id
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    quantization: str = "none"  # none | int8 | nf4
    attention: str = "auto"  # auto | flash_attention_2 | sdpa | eager
    remote_url: str = ""  # OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
    remote_model: str = ""
    remote_api_key_env: str = "STORYTRANSFORMER_API_KEY"
    max_new_tokens: int = 96
    timeout_s: float = 60.0
    dtype: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bfloat16 | float16 | float32
    retries: int = 2  # remote engine: retries with backoff after a connection error, 429 or 5xx
    generate: bool = True  # also ask the model for free (source-constrained) proposals
    allowed_words: list[str] = field(default_factory=list)  # extra words a proposal may add
    context_tokens: int = 0  # prompt budget for long context (related backlog stories); 0 = the model's window minus the answer
    fast_path: str = "auto"  # auto (on CUDA) | on | off: static KV cache, prefix reuse, CUDA-graph decoding


@dataclass
class Config:
    include: list[str] = field(default_factory=lambda: ["**/*.txt", "**/*.md", "**/*.markdown", "**/*.feature", "**/*.csv"])
    exclude: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)  # glob -> text | markdown | gherkin | csv
    select: list[str] = field(default_factory=list)  # only these codes ("" = all default-on rules)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)  # code -> error | warning | info | hint | off
    vague_words: list[str] = field(default_factory=lambda: list(DEFAULT_VAGUE_WORDS))
    extend_vague_words: list[str] = field(default_factory=list)
    solution_words: list[str] = field(default_factory=lambda: list(DEFAULT_SOLUTION_WORDS))
    extend_solution_words: list[str] = field(default_factory=list)
    template: str = "As a {role}, I want to {means}, so that {ends}."
    max_words: int = 45  # estimatable: longer stories are likely epics
    max_file_bytes: int = 20_000_000
    csv: CsvConfig = field(default_factory=CsvConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    estimate: dict = field(default_factory=dict)  # the size/cost estimate; checked by storytransformer.report.settings
    # Where the configuration came from (not a key).
    source: str = field(default="<defaults>", compare=False)
    root: str = field(default=".", compare=False)

    @property
    def all_vague_words(self) -> list[str]:
        return self.vague_words + self.extend_vague_words

    @property
    def all_solution_words(self) -> list[str]:
        return self.solution_words + self.extend_solution_words


ALWAYS_EXCLUDED = (".git", ".hg", ".svn", "node_modules", ".venv", "venv", ".tox", "__pycache__", ".mypy_cache", ".pytest_cache")
NOT_KEYS = {"source", "root"}


def _check(value, tp, key: str, source: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: '{key}' must be a table")
        return _build(tp, value, key, source)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list) or not all(isinstance(v, item) for v in value):
            raise ConfigError(f"{source}: '{key}' must be a list of {item.__name__}")
        return list(value)
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f"{source}: '{key}' must be a table of strings")
        return dict(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise ConfigError(f"{source}: '{key}' must be {tp.__name__}, not {type(value).__name__} ({value!r})")
    return value


def _build(cls, table: dict, prefix: str, source: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - NOT_KEYS
    kwargs = {}
    for key, value in table.items():
        norm = key.replace("-", "_")
        full = f"{prefix}.{key}"
        if norm not in names:
            raise ConfigError(f"{source}: unknown key '{full}' (known: {', '.join(sorted(names))})")
        kwargs[norm] = _check(value, hints[norm], full, source)
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    src = cfg.source
    for code, sev in cfg.severity.items():
        if sev not in SEVERITIES:
            raise ConfigError(f"{src}: 'tool.storytransformer.severity.{code}' must be one of {', '.join(SEVERITIES)}, not {sev!r}")
    from .rules import RULES  # imported here: rules import this module

    for key in ("select", "ignore"):
        for code in getattr(cfg, key):
            if code.upper() not in RULES and not any(c.startswith(code.upper()) for c in RULES):
                raise ConfigError(f"{src}: 'tool.storytransformer.{key}' names unknown rule {code!r}")
    for code in cfg.severity:
        if code.upper() not in RULES:
            raise ConfigError(f"{src}: 'tool.storytransformer.severity' names unknown rule {code!r}")
    for glob, fmt in cfg.formats.items():
        if fmt not in ("text", "markdown", "gherkin", "csv"):
            raise ConfigError(f"{src}: 'tool.storytransformer.formats.\"{glob}\"' must be text, markdown, gherkin or csv, not {fmt!r}")
    s = cfg.similarity
    if not (0 < s.overlap_threshold <= s.duplicate_threshold <= 1):
        raise ConfigError(f"{src}: 'tool.storytransformer.similarity' thresholds must satisfy 0 < overlap_threshold <= duplicate_threshold <= 1")
    if cfg.engine.quantization not in ("none", "int8", "nf4"):
        raise ConfigError(f"{src}: 'tool.storytransformer.engine.quantization' must be none, int8 or nf4, not {cfg.engine.quantization!r}")
    if cfg.engine.fast_path not in ("auto", "on", "off"):
        raise ConfigError(f"{src}: 'tool.storytransformer.engine.fast_path' must be auto, on or off, not {cfg.engine.fast_path!r}")
    if cfg.engine.attention not in ("auto", "flash_attention_2", "sdpa", "eager"):
        raise ConfigError(f"{src}: 'tool.storytransformer.engine.attention' must be auto, flash_attention_2, sdpa or eager")
    for field_name in ("max_words",):
        if getattr(cfg, field_name) < 1:
            raise ConfigError(f"{src}: 'tool.storytransformer.{field_name}' must be at least 1")
    if cfg.estimate:
        try:
            from .report.settings import from_section
        except ImportError:
            pass
        else:
            from_section(cfg.estimate, src)
    try:
        cfg.template.format(role="r", means="m", ends="e")
    except (KeyError, IndexError, ValueError) as e:
        raise ConfigError(f"{src}: 'tool.storytransformer.template' may only use {{role}}, {{means}} and {{ends}} ({e})") from None


def from_table(table: dict, source: str = "<inline>", root: str = ".") -> Config:
    cfg = _build(Config, table, "tool.storytransformer", source)
    cfg.source, cfg.root = source, root
    _validate(cfg)
    return cfg


def find_config_file(start: Path) -> Path | None:
    """The nearest .storytransformer.toml, or pyproject.toml with our table, at or above ``start``."""
    start = start.resolve()
    for d in [start, *start.parents] if start.is_dir() else [start.parent, *start.parent.parents]:
        for name in CONFIG_FILES:
            p = d / name
            if p.is_file():
                if name == "pyproject.toml":
                    try:
                        if "storytransformer" not in tomllib.loads(p.read_text("utf-8")).get("tool", {}):
                            continue
                    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
                        continue
                return p
    return None


def load_config(path: Path | None = None, start: Path | None = None) -> Config:
    """Load ``path``, or the nearest config file above ``start``, or the defaults."""
    if path is None and start is not None:
        path = find_config_file(start)
    if path is None:
        return Config(root=str((start or Path(".")).resolve() if start and start.is_dir() else Path(".").resolve()))
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    table = data.get("tool", {}).get("storytransformer", {}) if path.name == "pyproject.toml" else data
    if path.name != "pyproject.toml" and "tool" in data and "storytransformer" in data["tool"]:
        table = data["tool"]["storytransformer"]
    return from_table(table, str(path), str(path.parent.resolve()))
