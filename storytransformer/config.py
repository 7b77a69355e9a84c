"""Configuration from ``[tool.storytransformer]`` in pyproject.toml or ``.storytransformer.toml``.

Every key is checked: an unknown key, a value of the wrong type or out of its bounds raises
:class:`ConfigError` naming the file and the key, so a typo never silently turns a rule off
and a hostile file cannot exhaust memory or crash the run.

Where a configuration may come from (docs/configuration.md, "Where settings may come from"):
the user's own ``config.toml`` in the user configuration directory, then the nearest project
file found upwards from the checked path but never above the project root (the repository
root, the home directory, or for the servers the workspace folder), and only if nobody else
could have written it (:mod:`storytransformer.trust`). ``--config FILE`` is trusted as given.
"""

from __future__ import annotations

import dataclasses
import math
import os
import string
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
    # Also flagged by annotators on the tuning backlogs (docs/benchmarks/rules.md): quantities and
    # qualities with no measure, hedges, and catch-alls.
    "some", "very", "great", "awesome", "beautiful", "pleasant", "clear", "clearly", "comprehensive",
    "familiar", "sensible", "important", "timely", "interesting", "appealing", "minimal", "possibly",
    "perhaps", "maybe", "probably", "in some way", "whatever", "as soon as possible", "stuff", "stuffs",
    "everything",
    # Catch-alls and unmeasured qualities the guideline names (docs/labelling.md: "relevant", "as much
    # as possible", a list ending in "and other ..."), counted on the tuning backlogs only.
    "relevant", "something", "and other", "any other", "other aspects", "high", "effective",
    "increased", "as necessary", "as possible", "probable", "well defined", "well-defined", "well documented",
    "well-documented", "well visible", "well-visible", "well designed", "well-designed", "well structured",
    "well-structured",
)
DEFAULT_SOLUTION_WORDS = (
    "button", "dropdown", "drop-down", "checkbox", "check box", "radio button", "popup", "pop-up",
    "modal", "tooltip", "hyperlink", "textbox", "text box", "text field", "scrollbar", "icon",
    "click", "red", "green", "blue", "yellow", "orange", "grey", "gray", "purple", "bold", "font",
    "pixel", "pixels", "mysql", "postgres", "postgresql", "mongodb", "oracle", "database table",
    "rest api", "ajax", "javascript", "react", "angular", "jquery", "css",
    "java", "python", "php", "ruby", "django", "drupal", "wordpress", "solr", "elasticsearch",
    "redis", "docker", "kubernetes", "aws", "s3", "cron", "api endpoint", "stored procedure",
    "database", "html", "wysiwyg", "shibboleth", "ip address", "ubuntu", "linux",
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
    # Tuned on the tuning part of the labelled pairs (benchmarks/similarity_quality.py): a relation needs
    # the whole stories within whole_threshold, then the means score decides.
    whole_threshold: float = 0.80
    duplicate_threshold: float = 0.50
    overlap_threshold: float = 0.40
    top_k: int = 5
    cache: bool = True
    # Added by the similarity index (docs/similarity.md explains and tunes each one).
    same_goal_threshold: float = 0.45  # another role wanting the same means (ST605)
    role_threshold: float = 0.60  # roles at least this similar count as the same role
    ends_threshold: float = 0.0  # same role and means but ends below this: another benefit (overlap); annotators call those duplicates
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


DEFAULT_BACKLOG_NAMES = ("*.stories.txt", "*backlog*", "*stories*", "*user-stories*", "*user_stories*")


@dataclass
class Config:
    include: list[str] = field(default_factory=lambda: ["**/*.txt", "**/*.md", "**/*.markdown", "**/*.feature", "**/*.csv"])
    exclude: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)  # glob -> text | markdown | gherkin | csv
    # Plain text files found by a walk or opened in an editor are story files only when they look like
    # backlogs (workspace.is_backlog): named so (these globs, on the file name, any case), named by a glob
    # of include or formats more specific than "**/*.txt", or mostly stories. false: every .txt is one.
    detect_backlogs: bool = True
    backlog_names: list[str] = field(default_factory=lambda: list(DEFAULT_BACKLOG_NAMES))
    select: list[str] = field(default_factory=list)  # only these codes ("" = all default-on rules)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)  # code -> error | warning | info | hint | off
    vague_words: list[str] = field(default_factory=lambda: list(DEFAULT_VAGUE_WORDS))
    extend_vague_words: list[str] = field(default_factory=list)
    accepted_words: list[str] = field(default_factory=list)  # never vague in this project (removed from both lists)
    solution_words: list[str] = field(default_factory=lambda: list(DEFAULT_SOLUTION_WORDS))
    extend_solution_words: list[str] = field(default_factory=list)
    template: str = "As a {role}, I want to {means}, so that {ends}."
    max_words: int = 45  # estimatable: longer stories are likely epics
    max_file_bytes: int = 20_000_000
    csv: CsvConfig = field(default_factory=CsvConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    estimate: dict = field(default_factory=dict)  # the size/cost estimate; checked by storytransformer.report.settings
    # Where the configuration came from (not keys).
    source: str = field(default="<defaults>", compare=False)
    root: str = field(default=".", compare=False)
    notes: list = field(default_factory=list, compare=False)  # files ignored while searching, with the reason
    remote_origin: typing.Any = field(default=None, compare=False)  # trust.RemoteOrigin when a project file set them

    @property
    def all_vague_words(self) -> list[str]:
        accepted = {w.strip().lower() for w in self.accepted_words}
        return [w for w in self.vague_words + self.extend_vague_words if w.strip().lower() not in accepted]

    @property
    def all_solution_words(self) -> list[str]:
        return self.solution_words + self.extend_solution_words


ALWAYS_EXCLUDED = (".git", ".hg", ".svn", "node_modules", ".venv", "venv", ".tox", "__pycache__", ".mypy_cache", ".pytest_cache")
NOT_KEYS = {"source", "root", "notes", "remote_origin"}
VCS_MARKERS = (".git", ".hg")
MAX_CONFIG_BYTES = 1_000_000  # a configuration file larger than this is refused unread
MAX_TEMPLATE_CHARS = 1_000

# Inclusive bounds of every numeric setting (key relative to tool.storytransformer).
BOUNDS: dict[str, tuple[float, float]] = {
    "max_words": (1, 10_000),
    "max_file_bytes": (1, 1 << 30),  # 1 byte .. 1 GiB: a story file is read whole
    "similarity.duplicate_threshold": (0, 1),
    "similarity.whole_threshold": (0, 1),
    "similarity.overlap_threshold": (0, 1),
    "similarity.same_goal_threshold": (0, 1),
    "similarity.role_threshold": (0, 1),
    "similarity.ends_threshold": (0, 1),
    "similarity.lexical_weight": (0, 1),
    "similarity.top_k": (1, 1_000),
    "similarity.max_neighbours": (1, 10_000),
    "similarity.batch_size": (1, 65_536),
    "engine.max_new_tokens": (1, 65_536),
    "engine.timeout_s": (0.001, 86_400),
    "engine.retries": (0, 20),
    "engine.context_tokens": (0, 10_000_000),
}


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
    if tp is float and not math.isfinite(value):
        raise ConfigError(f"{source}: '{key}' must be a finite number, not {value!r}")
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


def _check_bounds(cfg: Config) -> None:
    for dotted, (low, high) in BOUNDS.items():
        obj = cfg
        *parents, name = dotted.split(".")
        for part in parents:
            obj = getattr(obj, part)
        value = getattr(obj, name)
        if not (low <= value <= high):  # also refuses nan
            raise ConfigError(f"{cfg.source}: 'tool.storytransformer.{dotted}' must be from {_num(low)} to {_num(high)}, "
                              f"not {value!r}")


def _num(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def _check_template(src: str, template: str) -> None:
    key = f"{src}: 'tool.storytransformer.template'"
    if len(template) > MAX_TEMPLATE_CHARS:
        raise ConfigError(f"{key} is longer than {MAX_TEMPLATE_CHARS:,} characters")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ConfigError(f"{key} may only use {{role}}, {{means}} and {{ends}} ({e})") from None
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in ("role", "means", "ends"):
            raise ConfigError(f"{key} may only use {{role}}, {{means}} and {{ends}} (not {{{name}}})")
        if spec or conversion:
            # A width such as {role:1500000000} would allocate gigabytes when the template is filled.
            raise ConfigError(f"{key}: '{{{name}}}' takes no format spec or conversion (found "
                              f"{'!' + conversion if conversion else ''}{':' + spec if spec else ''})")


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
    _check_bounds(cfg)
    s = cfg.similarity
    if not (0 < s.overlap_threshold <= s.duplicate_threshold <= 1):
        raise ConfigError(f"{src}: 'tool.storytransformer.similarity' thresholds must satisfy 0 < overlap_threshold <= duplicate_threshold <= 1")
    if cfg.engine.quantization not in ("none", "int8", "nf4"):
        raise ConfigError(f"{src}: 'tool.storytransformer.engine.quantization' must be none, int8 or nf4, not {cfg.engine.quantization!r}")
    if cfg.engine.fast_path not in ("auto", "on", "off"):
        raise ConfigError(f"{src}: 'tool.storytransformer.engine.fast_path' must be auto, on or off, not {cfg.engine.fast_path!r}")
    if cfg.engine.attention not in ("auto", "flash_attention_2", "sdpa", "eager"):
        raise ConfigError(f"{src}: 'tool.storytransformer.engine.attention' must be auto, flash_attention_2, sdpa or eager")
    url = cfg.engine.remote_url
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{src}: 'tool.storytransformer.engine.remote_url' must be an http(s) URL, not {url!r}")
    if cfg.estimate:
        try:
            from .report.settings import from_section
        except ImportError:
            pass
        else:
            from_section(cfg.estimate, src)
    _check_template(src, cfg.template)


def from_table(table: dict, source: str = "<inline>", root: str = ".") -> Config:
    cfg = _build(Config, table, "tool.storytransformer", source)
    cfg.source, cfg.root = source, root
    _validate(cfg)
    return cfg


# -- reading files --------------------------------------------------------------------------


def read_toml(path: Path) -> dict:
    """A TOML file's contents; every failure (size, encoding, syntax, nesting) is a ConfigError naming the file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes; not read as a configuration file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: cannot read: not UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - MemoryError and anything else: a clear error, never a traceback
        raise ConfigError(f"{path}: cannot parse: {type(e).__name__}: {e}") from None


def _table_of(path: Path, data: dict) -> dict:
    if path.name == "pyproject.toml" or ("tool" in data and isinstance(data["tool"], dict)
                                         and "storytransformer" in data["tool"]):
        table = data.get("tool", {}).get("storytransformer", {}) if isinstance(data.get("tool"), dict) else {}
    else:
        table = data
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: 'tool.storytransformer' must be a table")
    return table


def _mentions_us(path: Path) -> bool:
    """Whether a pyproject.toml may hold our table (cheap: no parsing of files that do not)."""
    try:
        with open(path, "rb") as f:
            return b"storytransformer" in f.read(MAX_CONFIG_BYTES + 1)
    except OSError:
        return False


# -- finding the project's file -------------------------------------------------------------


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        return None


def project_root(start_dir: Path, workspace: bool = False) -> Path | None:
    """The highest directory the search may reach from ``start_dir`` (resolved), or None for no limit.

    The nearest directory at or above ``start_dir`` that holds ``.git`` or ``.hg``, or the
    home directory, whichever is nearer; when neither is met, ``start_dir`` itself for the
    servers (``workspace``: the workspace folder) and no limit for the command line, where
    ownership and permissions alone decide.
    """
    home = _home()
    for d in [start_dir, *start_dir.parents]:
        if any(os.path.lexists(d / m) for m in VCS_MARKERS):
            return d
        if home is not None and d == home:
            return d
    return start_dir if workspace else None


def search_config(start: Path, workspace: bool | None = None) -> tuple[Path | None, list[str]]:
    """The nearest usable config file at or above ``start`` within its project, and the notes on ignored files."""
    from . import trust

    if workspace is None:
        workspace = trust.POLICY.walk == "workspace"
    start = start.resolve()
    first = start if start.is_dir() else start.parent
    limit = project_root(first, workspace)
    notes: list[str] = []
    for d in [first, *first.parents]:
        for name in CONFIG_FILES:
            p = d / name
            if not p.is_file():
                continue
            if name == "pyproject.toml" and not _mentions_us(p):
                continue
            reason = trust.unsafe_reason(p)
            if reason:
                notes.append(f"{p} ignored: {reason} (it could have been written by someone else; "
                             "use --config to name it anyway)")
                continue
            if name == "pyproject.toml":
                data = read_toml(p)  # it mentions us: a broken one is an error, not silence
                tool = data.get("tool")
                if not isinstance(tool, dict) or "storytransformer" not in tool:
                    continue
            return p, notes
        if limit is not None and d == limit:
            break
    return None, notes


def find_config_file(start: Path) -> Path | None:
    """The nearest usable .storytransformer.toml, or pyproject.toml with our table, for ``start``."""
    from . import trust

    found, notes = search_config(start)
    for n in notes:
        trust.notice(n)
    return found


def _norm(table: dict) -> dict:
    """Keys with ``_`` for ``-`` in the sections whose keys are names (not globs or rule codes)."""
    out = {}
    for k, v in table.items():
        nk = k.replace("-", "_")
        out[nk] = _norm(v) if nk in ("csv", "similarity", "engine", "estimate") and isinstance(v, dict) else v
    return out


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def _user_table(notes: list[str]) -> tuple[dict, str]:
    from . import trust

    path = trust.user_config_file()
    if not path.is_file():
        return {}, ""
    reason = trust.unsafe_reason(path)
    if reason:
        notes.append(f"{path} ignored: {reason}")
        return {}, ""
    table = _table_of(path, read_toml(path))
    from_table(table, str(path))  # its own errors name it
    return table, str(path)


def load_config(path: Path | None = None, start: Path | None = None) -> Config:
    """The user's settings, then ``path`` (trusted as given) or the nearest project file for ``start``.

    Raises :class:`ConfigError` naming the file for every problem, including remote settings
    that the CLI was told to confirm and the user did not trust.
    """
    return _load(path, start, explicit=path is not None)


def load_project_file(path: Path) -> Config:
    """``path`` read as a project file found by the search (its remote settings need trust), not as --config."""
    return _load(path, None, explicit=False)


def _load(path: Path | None, start: Path | None, explicit: bool) -> Config:
    from . import trust

    notes: list[str] = []
    if path is None and start is not None:
        path, found_notes = search_config(start)
        notes += found_notes
    user, user_src = _user_table(notes)
    for n in notes:
        trust.notice(n)
    if path is None:
        root = str(start.resolve() if start is not None and start.is_dir() else Path(".").resolve())
        cfg = from_table(user, user_src, root) if user else Config(root=root)
        cfg.notes = notes
        return cfg
    table = _table_of(path, read_toml(path))
    try:
        merged = _merge(_norm(user), _norm(table)) if user else table
        cfg = from_table(merged, str(path), str(path.parent.resolve()))
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - RecursionError, MemoryError, anything: a clear error naming the file
        raise ConfigError(f"{path}: cannot use this configuration: {type(e).__name__}: {e}") from None
    cfg.notes = notes
    if not explicit:
        _guard_remote(cfg, path, from_table(user, user_src) if user else Config())
    return cfg


def _guard_remote(cfg: Config, path: Path, base: Config) -> None:
    """Keep a project file's remote-engine settings only if the user trusts them (see storytransformer.trust)."""
    from . import trust

    e, b = cfg.engine, base.engine
    if not e.remote_url or (e.remote_url == b.remote_url and e.remote_api_key_env == b.remote_api_key_env):
        return
    origin = trust.RemoteOrigin(str(path.resolve()), e.remote_url, e.remote_api_key_env, b.remote_url,
                                b.remote_api_key_env)
    try:
        ok = trust.resolve(origin)
    except trust.UntrustedConfig as ex:
        raise ConfigError(str(ex)) from None
    if not ok:
        e.remote_url, e.remote_api_key_env = b.remote_url, b.remote_api_key_env
    cfg.remote_origin = dataclasses.replace(origin, trusted=ok)
