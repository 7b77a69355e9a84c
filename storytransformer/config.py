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
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from . import typed_settings as settings
from .typed_settings import setting

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
    # Tuned on the tune part of the labelled pairs (benchmarks/similarity_tune.py): a relation needs the
    # whole stories within whole_threshold; a duplicate is also near the best neighbour of both stories.
    whole_threshold: float = setting(0.75, low=0, high=1)
    duplicate_threshold: float = setting(0.60, low=0, high=1)
    overlap_threshold: float = setting(0.60, low=0, high=1)
    top_k: int = setting(5, low=1, high=1_000)
    cache: bool = True
    # Added by the similarity index (docs/similarity.md explains and tunes each one).
    same_goal_threshold: float = setting(0.50, low=0, high=1)  # another role wanting the same means (ST605)
    role_threshold: float = setting(0.50, low=0, high=1)  # roles at least this similar count as the same role
    ends_threshold: float = setting(0.0, low=0, high=1)  # same role and means but ends below this: another benefit (overlap); annotators call those duplicates
    lexical_weight: float = setting(0.0, low=0, high=1)  # share of content-lemma overlap in the means score
    near_best: float = setting(0.03, low=0, high=1)  # a duplicate is at most this far below either story's nearest neighbour
    distinct_threshold: float = setting(2.5, low=0, high=100)  # a duplicate stands this many standard deviations above each story's mean cosine
    judge: bool = False  # true: the learned pair judge decides instead of the thresholds above (docs/similarity.md)
    # A local sentence-transformers directory (e.g. all-mpnet-base-v2 from scripts/install.sh --second-judge):
    # its cosines of the candidate pairs near a cut become two more judge features (turns the judge on); "" = off
    second_model: str = ""
    # with a second model, the whole gate: it judges pairs down to this cosine of the packaged model
    # (chosen on the tune pairs: benchmarks/similarity_quality.py --second-model DIR)
    second_whole_threshold: float = setting(0.60, low=0, high=1)
    max_neighbours: int = setting(20, low=1, high=10_000)  # candidate pairs kept per story (bounds memory on repetitive backlogs)
    device: str = "cpu"  # cpu | cuda | cuda:N | mps
    batch_size: int = setting(64, low=1, high=65_536)
    quantize: str = "none"  # none | int8 (dynamic int8 linear layers on the CPU: faster cold embedding)


@dataclass
class EngineConfig:
    """The language model engine."""

    model: str = ""  # "" = the packaged SmolLM2-135M-Instruct; or a directory, a .gguf file, a hub id
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # none | int8 | nf4 (bitsandbytes) | int4 (the fast path's own 4-bit weights: CUDA, matrix inputs multiple of 128)
    quantization: str = setting("none", choices=("none", "int8", "nf4", "int4"))
    attention: str = setting("auto", choices=("auto", "flash_attention_2", "sdpa", "eager"))
    remote_url: str = ""  # OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1
    remote_model: str = ""
    remote_api_key_env: str = "STORYTRANSFORMER_API_KEY"
    max_new_tokens: int = setting(96, low=1, high=65_536)
    timeout_s: float = setting(60.0, low=0.001, high=86_400)
    dtype: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bfloat16 | float16 | float32
    retries: int = setting(2, low=0, high=20)  # remote engine: retries with backoff after a connection error, 429 or 5xx
    generate: bool = True  # also ask the model for free (source-constrained) proposals
    allowed_words: list[str] = field(default_factory=list)  # extra words a proposal may add
    context_tokens: int = setting(0, low=0, high=10_000_000)  # prompt budget for long context (related backlog stories); 0 = the model's window minus the answer
    # auto (on CUDA) | on | off: static KV cache, prefix reuse, CUDA-graph decoding
    fast_path: str = setting("auto", choices=("auto", "on", "off"))
    # the fast path's KV cache: bf16 (the model's dtype) | fp8 (e4m3 with scales: half the memory; CUDA only)
    kv_cache: str = setting("bf16", choices=("bf16", "fp8"))
    # once the model checks ran on a folder, the daemon asks the resident model about the near pairs each edit
    # makes (ST606): auto (a GPU or remote engine: a question takes milliseconds, not seconds) | on | off
    model_checks_on_edit: str = setting("auto", choices=("auto", "on", "off"))


@dataclass(frozen=True)
class HostedModel:
    """A hosted model the estimate prices a pass with (USD per million tokens)."""

    name: str
    input_per_million: float = setting(low=0.0, high=1e6, expected="a number")  # USD per million prompt tokens
    output_per_million: float = setting(low=0.0, high=1e6, expected="a number")  # USD per million generated tokens
    context_window: int = setting(low=1, high=1_000_000_000, expected="an integer")  # tokens


# List prices (USD per million tokens) as the providers published them in late 2024;
# they change: check your provider's price page and override them in the configuration.
DEFAULT_HOSTED = (
    HostedModel("gpt-4o-mini", 0.15, 0.60, 128_000),
    HostedModel("gpt-4o", 2.50, 10.00, 128_000),
    HostedModel("claude-3-5-haiku", 0.80, 4.00, 200_000),
    HostedModel("claude-3-5-sonnet", 3.00, 15.00, 200_000),
    HostedModel("gemini-1.5-flash", 0.075, 0.30, 1_000_000),
)
MAX_HOSTED = 1_000


@dataclass(frozen=True)
class EstimateSettings:
    """How one pass of the engine over a backlog is costed: ``[tool.storytransformer.estimate]`` (docs/report.md)."""

    # Local engine throughput, tokens per second, for the packaged SmolLM2-135M on 2 CPU cores:
    # decoding runs at 16-23 tokens/s on an idle machine; prompt processing ran 50-75 times faster
    # than decoding in benchmarks/estimate_throughput.py (docs/benchmarks/estimate_throughput.md),
    # hence 1,000. ``storytransformer estimate --measure`` measures this machine instead.
    prefill_tokens_per_s: float = setting(1000.0, above=0, high=1e9, expected="a number")
    decode_tokens_per_s: float = setting(20.0, above=0, high=1e9, expected="a number")
    # Generated tokens per story token: a rewrite is about as long as the story it rewrites.
    output_ratio: float = setting(1.0, low=0.0, high=1_000.0, expected="a number")
    # Prompt tokens added to every story (system message, examples); 0 = count the engine's
    # own rewrite prompt with the tokenizer.
    prompt_overhead_tokens: int = setting(0, low=0, high=10_000_000, expected="an integer")
    hosted: tuple[HostedModel, ...] = setting(DEFAULT_HOSTED, max_items=MAX_HOSTED)


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
    extend_select: list[str] = field(default_factory=list)  # these too, on top of select or the default set
    ignore: list[str] = field(default_factory=list)
    # glob -> codes or prefixes turned off in the files it names (file_ignores.py; "!glob": the others)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)  # code -> error | warning | info | hint | off
    vague_words: list[str] = field(default_factory=lambda: list(DEFAULT_VAGUE_WORDS))
    extend_vague_words: list[str] = field(default_factory=list)
    accepted_words: list[str] = field(default_factory=list)  # never vague in this project (removed from both lists)
    solution_words: list[str] = field(default_factory=lambda: list(DEFAULT_SOLUTION_WORDS))
    extend_solution_words: list[str] = field(default_factory=list)
    max_words: int = setting(80, low=1, high=10_000)  # estimatable: epics (annotators call shorter long stories run-ons, ST405)
    max_file_bytes: int = setting(20_000_000, low=1, high=1 << 30)  # 1 byte .. 1 GiB: a story file is read whole
    csv: CsvConfig = field(default_factory=CsvConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    estimate: EstimateSettings = field(default_factory=lambda: EstimateSettings())  # the size/cost estimate (report, estimate)
    # Where the configuration came from (not keys).
    source: str = setting("<defaults>", key=False, compare=False)
    root: str = setting(".", key=False, compare=False)
    notes: list = setting(default_factory=list, key=False, compare=False)  # files ignored while searching, with the reason
    remote_origin: typing.Any = setting(None, key=False, compare=False)  # trust.RemoteOrigin when a project file set them

    @property
    def all_vague_words(self) -> list[str]:
        accepted = {w.strip().lower() for w in self.accepted_words}
        return [w for w in self.vague_words + self.extend_vague_words if w.strip().lower() not in accepted]

    @property
    def all_solution_words(self) -> list[str]:
        return self.solution_words + self.extend_solution_words


ALWAYS_EXCLUDED = (".git", ".hg", ".svn", "node_modules", ".venv", "venv", ".tox", "__pycache__", ".mypy_cache", ".pytest_cache")
VCS_MARKERS = (".git", ".hg")
MAX_CONFIG_BYTES = 1_000_000  # a configuration file larger than this is refused unread
settings.REMOVED[Config] = {
    "template": "it never changed what is checked (the uniform rules follow the backlog's own dominant "
                "template); delete the line",
}


def known_rules() -> set[str]:
    """Every rule code (the registry, filled when the rules package loads)."""
    from .rules import RULES  # here, not at the top: the CLI's --version and config help need no rules

    return set(RULES)


def _validate(cfg: Config, pre: str) -> None:
    src = cfg.source
    for code, sev in cfg.severity.items():
        if sev not in SEVERITIES:
            raise ConfigError(f"{src}: '{pre}severity.{code}' must be one of {', '.join(SEVERITIES)}, not {sev!r}")
    known = known_rules()
    for key in ("select", "extend_select", "ignore"):
        for code in getattr(cfg, key):
            if code.upper() not in known and not any(c.startswith(code.upper()) for c in known):
                raise ConfigError(f"{src}: '{pre}{key}' names unknown rule {code!r}")
    for glob, codes in cfg.per_file_ignores.items():
        if not glob.strip("!"):
            raise ConfigError(f"{src}: '{pre}per-file-ignores' has an empty glob")
        for code in codes:
            if code.upper() not in known and not any(c.startswith(code.upper()) for c in known):
                raise ConfigError(f"{src}: '{pre}per-file-ignores.\"{glob}\"' names unknown rule {code!r}")
    for code in cfg.severity:
        if code.upper() not in known:
            raise ConfigError(f"{src}: '{pre}severity' names unknown rule {code!r}")
    for glob, fmt in cfg.formats.items():
        if fmt not in ("text", "markdown", "gherkin", "csv"):
            raise ConfigError(f"{src}: '{pre}formats.\"{glob}\"' must be text, markdown, gherkin or csv, not {fmt!r}")
    s = cfg.similarity
    if not (0 < s.overlap_threshold <= s.duplicate_threshold <= 1):
        raise ConfigError(f"{src}: '{pre}similarity' thresholds must satisfy 0 < overlap_threshold <= duplicate_threshold <= 1")
    url = cfg.engine.remote_url
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"{src}: '{pre}engine.remote_url' must be an http(s) URL, not {url!r}")
    for i, model in enumerate(cfg.estimate.hosted):
        if not model.name:
            raise ConfigError(f"{src}: '{pre}estimate.hosted[{i}].name' must be a non-empty string")


def setting_prefix(source: str) -> str:
    """How a setting is spelled where it was written: ``x`` in .storytransformer.toml, else ``tool.storytransformer.x``."""
    return "" if Path(source).name == ".storytransformer.toml" else "tool.storytransformer"


def from_table(table: dict, source: str = "<inline>", root: str = ".") -> Config:
    prefix = setting_prefix(source)
    cfg = settings.structure(Config, table, source=source, prefix=prefix, error=ConfigError)
    cfg.source, cfg.root = source, root
    _validate(cfg, prefix + "." if prefix else "")
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
