"""The report as one self-contained HTML page: inline CSS, inline JS, inline SVG, no network.

The report's data is embedded as JSON (``<script type="application/json"
id="storytransformer-report-data">``) so ``report --compare`` can read an old page back.
"""

from __future__ import annotations

import json
from html import escape

from . import charts
from .compare import DATA_ELEMENT_ID
from .estimate import duration, money
from .graph import cluster_svg
from .page_assets import CSS, JS

MAX_GRAPHS = 60  # clusters drawn as graphs; the rest are listed


def embed_json(data) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can appear in it)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(data: dict) -> str:
    t = data["totals"]
    title = "Backlog report: " + ", ".join(data["inputs"]) if data["inputs"] else "Backlog report"
    body = [
        f"<header><h1>{escape(title)}</h1><p class=meta>Generated {escape(data['generated'])} by "
        f"StoryTransformer {escape(str(data['tool_version']))}"
        f"{'' if data.get('semantic') else ' · semantic duplicates not checked'}</p>",
        _cards(t), "</header>",
        _notes(data),
        _size(data.get("size")),
        _charts(data),
        _files(data["files"], data.get("size")),
        _findings(data["findings"]),
        _clusters(data.get("clusters") or [], data.get("merges"), data.get("merge_summary")),
        _changes(data.get("compare")),
    ]
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'; img-src data:\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(b for b in body if b)
            + f'\n<script type="application/json" id="{DATA_ELEMENT_ID}">{embed_json(data)}</script>'
            + f"\n<script>{JS}</script></body></html>\n")


def _score(value) -> str:
    return "–" if value is None else f"{value:.0f}"


def _cards(t: dict) -> str:
    sev = t["by_severity"]
    cards = [("files", t["files"]), ("stories", t["stories"]), ("words", f"{t['words']:,}"),
             ("findings", t["findings"]), ("errors", sev.get("error", 0)), ("warnings", sev.get("warning", 0)),
             ("quality score", _score(t["score"]))]
    return "<div class=cards>" + "".join(
        f"<div class=card><span class=value>{escape(str(v))}</span><span class=label>{k}</span></div>" for k, v in cards
    ) + "</div>"


def _notes(data: dict) -> str:
    items = list(data.get("notes") or []) + list(data.get("problems") or [])
    if not items:
        return ""
    return "<section id=notes><ul>" + "".join(f"<li>{escape(n)}</li>" for n in items) + "</ul></section>"


def _size(size: dict | None) -> str:
    if not size:
        return ""
    s, p, local = size["size"], size["pass"], size["local"]
    fits = local.get("fits_in_one_prompt")
    local_fit = ("" if fits is None else
                 f" Context window {local['context_window']:,} tokens: the backlog "
                 + ("fits in one prompt." if fits else f"needs {local['prompts_needed'] or 'more than'} prompts."))
    rows = "".join(
        f"<tr><td>{escape(h['model'])}</td><td class=num>{h['input_per_million']:g}</td>"
        f"<td class=num>{h['output_per_million']:g}</td><td class=num>{money(h['cost_usd'])}</td>"
        f"<td class=num>{h['context_window']:,}</td>"
        f"<td>{'yes' if h['fits_in_one_prompt'] else 'no (' + str(h['prompts_needed'] or '–') + ' prompts)'}</td></tr>"
        for h in size["hosted"])
    return (
        "<section id=size><h2>Size and cost of one model pass</h2>"
        f"<div class=cards><div class=card><span class=value>{s['stories']:,}</span><span class=label>stories</span></div>"
        f"<div class=card><span class=value>{s['words']:,}</span><span class=label>words</span></div>"
        f"<div class=card><span class=value>{s['tokens']:,}</span><span class=label>tokens</span></div>"
        f"<div class=card><span class=value>{escape(duration(local['seconds']))}</span>"
        f"<span class=label>one pass, local engine</span></div></div>"
        f"<p>Tokens counted with the tokenizer of {escape(s['tokenizer'])}. One pass sends {p['input_tokens']:,} "
        f"input tokens ({p['prompt_tokens_per_story']} prompt tokens per story) and receives about "
        f"{p['output_tokens']:,} output tokens. Local time at {local['prefill_tokens_per_s']:g} prompt tokens/s "
        f"and {local['decode_tokens_per_s']:g} generated tokens/s ({escape(local['throughput'])}).{escape(local_fit)}</p>"
        "<table class=data id=hosted><thead><tr><th>hosted model</th><th>$/M input</th><th>$/M output</th>"
        f"<th>cost of one pass</th><th>context window</th><th>backlog fits in one prompt</th></tr></thead><tbody>{rows}"
        f"</tbody></table><p class=meta>Assumptions: {escape(size['assumptions'])}. Prices are configurable "
        "(<code>[tool.storytransformer.estimate]</code>).</p></section>")


def _charts(data: dict) -> str:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ("<section id=charts><h2>Findings at a glance</h2><p>The charts need matplotlib, which is not "
                "installed here (pip install matplotlib).</p></section>")
    return ("<section id=charts><h2>Findings at a glance</h2><div class=charts>"
            f"<figure class=chart data-chart=rules>{charts.rules_chart(data['rules'])}</figure>"
            f"<figure class=chart data-chart=files>{charts.files_chart(data['files'])}</figure>"
            f"<figure class=chart data-chart=scores>{charts.scores_chart(data['files'])}</figure>"
            "</div></section>")


def _files(files: list[dict], size: dict | None = None) -> str:
    tokens = {f["file"]: f["tokens"] for f in (size or {}).get("files", [])}
    rows = "".join(
        f"<tr><td>{escape(f['file'])}</td><td class=num>{f['stories']}</td><td class=num>{f['words']:,}</td>"
        + (f"<td class=num>{tokens.get(f['file'], 0):,}</td>" if tokens else "") +
        f"<td class=num>{f['findings']}</td><td class=num>{f['by_severity'].get('error', 0)}</td>"
        f"<td class=num>{f['by_severity'].get('warning', 0)}</td>"
        f"<td class=num><span class=score style=\"background:{charts.score_colour(f['score'])}\">{_score(f['score'])}</span></td></tr>"
        for f in files)
    return ("<section id=files><h2>Files</h2><p class=meta>Quality score = 100 × share of the file's stories "
            "with no warning or error (info and hints do not count).</p><table class=data><thead><tr><th>file</th>"
            f"<th>stories</th><th>words</th>{'<th>tokens</th>' if tokens else ''}<th>findings</th><th>errors</th><th>warnings</th><th>score</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></section>")


def _options(values) -> str:
    return "".join(f"<option value=\"{escape(v)}\">{escape(v)}</option>" for v in values)


def _findings(findings: list[dict]) -> str:
    rules = sorted({f["code"] for f in findings})
    files = sorted({f["file"] for f in findings})
    sevs = [s for s in ("error", "warning", "info", "hint") if any(f["severity"] == s for f in findings)]
    rows = []
    for f in findings:
        label = f.get("story_label") or ""  # the story's own id where the format gives one (US-12); never an internal id
        fix = f"<div class=fix>Fix: {escape(f['fix'])}</div>" if f.get("fix") else ""
        # the search reads the row's own text and the rule's name (title): no second copy of the message
        rows.append(
            f"<tr data-rule=\"{escape(f['code'])}\" data-severity=\"{f['severity']}\" data-file=\"{escape(f['file'])}\">"
            f"<td><span class=\"sev {f['severity']}\">{f['severity']}</span></td>"
            f"<td title=\"{escape(f['rule'])}\">{escape(f['code'])}</td><td>{escape(f['file'])}:{f['line']}</td>"
            f"<td>{escape(label)}</td><td>{escape(f['message'])} {fix}</td></tr>")
    return (
        "<section id=findings><h2>Findings</h2><form class=filters id=filters onsubmit=\"return false\">"
        f"<label>Rule <select id=filter-rule><option value=\"\">all</option>{_options(rules)}</select></label>"
        f"<label>Severity <select id=filter-severity><option value=\"\">all</option>{_options(sevs)}</select></label>"
        f"<label>File <select id=filter-file><option value=\"\">all</option>{_options(files)}</select></label>"
        "<label>Search <input id=filter-text type=search placeholder=\"words in the message, file:line, story id…\"></label>"
        f"<span id=visible-count>{len(findings)} of {len(findings)}</span></form>"
        "<table class=data id=findings-table><thead><tr><th>severity</th><th>rule</th><th>where</th><th>story</th>"
        f"<th>message</th></tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


KIND_LABELS = {"model": "ranked by the model", "deterministic": "deterministic", "none": "no grounded merge",
               "not proposed": "not proposed"}


def _clusters(clusters: list[dict], merges: dict | None, summary: dict | None = None) -> str:
    """The largest :data:`MAX_GRAPHS` clusters as cards with a graph; the rest as one table row each
    (a 2,000-cluster page stays quick to open and to search with the browser)."""
    if not clusters:
        return ("<section id=clusters><h2>Near-duplicate clusters</h2><p>No clusters"
                f"{'' if merges is not None else ' (semantic check not run)'}.</p></section>")
    ranked = merges and merges.get("ranked_by")
    how = (f"Merges are grounded proposals of the engine (built only from the stories' own parts, checked by the "
           f"validator){', ranked by ' + escape(ranked) + ' while its time lasted' if ranked else ', not ranked by a model'}.")
    counts = ""
    if summary:
        by = summary["by_kind"]
        options = "".join(f"<option value=\"{escape(k)}\">{escape(KIND_LABELS[k])} ({by.get(k, 0):,})</option>"
                          for k in KIND_LABELS if by.get(k))
        counts = ("<form class=filters onsubmit=\"return false\"><label>Merge <select id=filter-merge>"
                  f"<option value=\"\">all ({len(clusters):,})</option>{options}</select></label></form>")
    out = [f"<section id=clusters><h2>Near-duplicate clusters ({len(clusters):,})</h2>{counts}<p class=meta>{how} "
           "Edges: red = duplicate, orange = overlap, purple = same text; thicker = more similar; "
           "the dark node is the representative.</p><div class=clusters>"]
    for c in clusters[:MAX_GRAPHS]:
        items = "".join(
            f"<li{' class=rep' if s['story_id'] == c['representative'] else ''}><b>{escape(s['file'])}:{s['line']}</b>"
            f"{' <span class=meta>' + escape(s['story_label']) + '</span>' if s.get('story_label') else ''}"
            f"<br>{escape(s['text'])}</li>" for s in c["stories"])
        out.append(f"<article class=cluster id=\"cluster-{escape(c['id'])}\" data-kind=\"{escape(_kind(c))}\">"
                   f"<h3>{escape(c['id'])}: {c['size']} stories, cohesion {c['cohesion']:.2f}</h3>{cluster_svg(c)}"
                   f"<ul>{items}</ul>{_merge(c)}</article>")
    out.append("</div>")
    rest = clusters[MAX_GRAPHS:]
    if rest:
        rows = "".join(
            f"<tr id=\"cluster-{escape(c['id'])}\" data-kind=\"{escape(_kind(c))}\"><td>{escape(c['id'])}</td>"
            f"<td class=num>{c['size']}</td><td class=num>{c['cohesion']:.2f}</td><td>"
            + "<br>".join(f"<b>{escape(s['file'])}:{s['line']}</b> {escape(s['text'])}" for s in c["stories"])
            + f"</td><td>{_merge(c)}</td></tr>" for c in rest)
        out.append(f"<h3>The other {len(rest):,} clusters</h3><table class=data id=clusters-table><thead><tr><th>cluster</th>"
                   f"<th>stories</th><th>cohesion</th><th>stories (file:line)</th><th>merge</th></tr></thead>"
                   f"<tbody>{rows}</tbody></table>")
    out.append("</section>")
    return "".join(out)


def _kind(c: dict) -> str:
    return c.get("merge_kind") or ("deterministic" if c.get("merge") else "none")


def _merge(c: dict) -> str:
    """The proposed merge and what it is (ranked by the model, deterministic and why), or why there is none."""
    m = c.get("merge")
    note = c.get("merge_note") or ""
    if m:
        what = (f"ranked by the model, score {m['score']:.3f}" if m.get("score") is not None
                else escape(note) if note else "not ranked")
        lines = m["text"].split("\n")  # a bundle every source asks for is merged into one story per action
        partial = bool(m.get("others"))  # the duplicates within the cluster only
        title = "Proposed merge"
        if partial:
            title += f" of {len(m.get('merged') or [])} of the {c['size']} stories (the duplicates among them)"
        if len(lines) > 1:
            title += f"{',' if partial else ''} into {len(lines)} stories, one per action"
        aside = m.get("said_by_other_source") or []
        said = ("<br><span class=meta>Set aside, said by another story: "
                + "; ".join(escape(x) for x in aside) + "</span>") if aside else ""
        apart = m.get("benefits_kept_apart") or []
        if apart:
            said += ("<br><span class=meta>Both benefits kept, they state different goals: "
                     + "; ".join(escape(x) for x in apart) + "</span>")
        others = (f"<br><span class=meta>The other stories stay as they are: {escape(m['others'])}</span>"
                  if partial else "")
        return (f"<div class=merge><b>{title}</b> <span class=meta>({escape(m['origin'])}; {what})</span><br>"
                + "<br>".join(escape(line) for line in lines) + said + others + "</div>")
    rep = next((s["text"] for s in c["stories"] if s["story_id"] == c["representative"]), "")
    return (f"<div class=\"merge none\"><b>Representative:</b> {escape(rep)}"
            f"<br><span class=meta>{escape(note)}</span></div>")


def _changes(cmp: dict | None) -> str:
    if not cmp:
        return ""
    n = cmp["counts"]

    def table(rows: list[dict], kind: str) -> str:
        if not rows:
            return f"<p>None {kind}.</p>"
        body = "".join(f"<tr><td>{escape(r['code'])}</td><td>{escape(str(r.get('story_label') or ''))}</td>"
                       f"<td>{escape(str(r.get('file')))}:{r.get('line')}</td><td>{escape(str(r.get('message')))}</td></tr>"
                       for r in rows)
        return (f"<table class=data data-changes={kind}><thead><tr><th>rule</th><th>story</th><th>where</th>"
                f"<th>message</th></tr></thead><tbody>{body}</tbody></table>")

    rules = "".join(f"<tr><td>{escape(r['code'])}</td><td class=num>+{r['added']}</td><td class=num>−{r['removed']}</td>"
                    f"<td class=num>{r['net']:+d}</td></tr>" for r in cmp["by_rule"])
    return (f"<section id=changes><h2>Changes since {escape(cmp['old'])}</h2><div class=cards>"
            f"<div class=card><span class=value>{n['added']}</span><span class=label>added</span></div>"
            f"<div class=card><span class=value>{n['removed']}</span><span class=label>removed</span></div>"
            f"<div class=card><span class=value>{n['unchanged']}</span><span class=label>unchanged</span></div>"
            f"<div class=card><span class=value>{n['old_total']} → {n['new_total']}</span><span class=label>findings</span></div></div>"
            + (f"<table class=data><thead><tr><th>rule</th><th>added</th><th>removed</th><th>net</th></tr></thead><tbody>{rules}</tbody></table>" if rules else "")
            + f"<h3>Added</h3>{table(cmp['added'], 'added')}<h3>Removed</h3>{table(cmp['removed'], 'removed')}</section>")
