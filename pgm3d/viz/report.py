"""A self-contained HTML report of a run folder: its tables, headline numbers and figures.

Images are embedded as base64 ``data:`` URIs, so ``report.html`` can be mailed or archived alone;
a 3D figure with an interactive view beside it (``name.3d.json``, :mod:`pgm3d.viz.interactive`)
gets a plotly.js scene under its PNG (plotly.js inlined once), which the PNG keeps for print.
The layout comes from an optional ``report.json`` in the folder (title, introduction, and an
ordered list of sections, each a sub-folder with a heading, a caption, captions of its PNGs
and extra ``figures`` by path from the run folder); without one, the
folder itself and each sub-folder holding results become sections in name order.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

from pgm3d._io import atomic_write_text
from pgm3d.viz.interactive import view_path

__all__ = ["REPORT_FILE", "build_report", "markdown_to_html"]

REPORT_FILE = "report.html"
LAYOUT_FILE = "report.json"

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5em 2em 4em; color: #222; line-height: 1.45; }
h1 { border-bottom: 3px solid #4a6fa5; padding-bottom: .3em; }
h2 { margin-top: 2.2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; color: #2c4a75; }
h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .8em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #d0d7de; padding: .3em .7em; }
th { background: #eef2f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafbfc; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { color: #555; font-size: .9em; margin-top: .3em; }
.headline { display: flex; flex-wrap: wrap; gap: .8em; margin: 1em 0; }
.card { background: #f3f6fa; border-radius: 6px; padding: .6em 1em; min-width: 11em; }
.card b { display: block; font-size: 1.3em; color: #2c4a75; }
.card span { font-size: .82em; color: #555; }
code { background: #f3f3f3; padding: .05em .3em; border-radius: 3px; }
footer { margin-top: 3em; color: #777; font-size: .85em; }
details.view { margin: -1.2em 0 2em; }
details.view summary { color: #2c4a75; cursor: pointer; font-size: .9em; }
.view3d { width: 100%; height: 460px; border: 1px solid #e3e3e3; }
"""


def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def _cell(text: str, tag: str) -> str:
    numeric = re.fullmatch(r"[-+]?([\d.,]+(e[-+]?\d+)?( ± [\d.e-]+)?%?|inf|nan)", text.strip())
    cls = ' class="num"' if numeric and tag == "td" else ""
    return f"<{tag}{cls}>{_inline(text.strip())}</{tag}>"


def markdown_to_html(text: str) -> str:
    """The markdown our tables use: ``#`` headings, pipe tables, ``-`` lists, paragraphs."""
    out, para, rows, items = [], [], [], []

    def flush():
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if rows:
            head, body = rows[0], [r for r in rows[1:] if not re.fullmatch(r"[\s|:-]+", r)]
            split = lambda r: r.strip().strip("|").split("|")  # noqa: E731
            out.append("<table><tr>" + "".join(_cell(c, "th") for c in split(head)) + "</tr>")
            out.extend("<tr>" + "".join(_cell(c, "td") for c in split(r)) + "</tr>" for r in body)
            out.append("</table>")
            rows.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|"):
            if not rows:
                flush()
            rows.append(s)
            continue
        if rows:
            flush()
        if not s:
            flush()
        elif m := re.match(r"(#{1,4})\s+(.*)", s):
            flush()
            level = min(len(m.group(1)) + 2, 6)  # a file's headings sit under the section's
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif s.startswith(("- ", "* ")):
            if para:
                flush()
            items.append(s[2:])
        else:
            if items:
                flush()
            para.append(s)
    flush()
    return "\n".join(out)


def _image(path: Path, caption: str, views: list) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    figure = (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.name)}">'
        f"<figcaption>{_inline(caption)}</figcaption></figure>"
    )
    view = view_path(path)
    if not view.is_file():
        return figure
    n = len(views)
    views.append(view)
    spec = view.read_text().replace("</", "<\\/")  # JSON inside <script>: never a closing tag
    return (
        figure + f'<details class="view" open><summary>turn it around (drag to rotate, scroll '
        f"to zoom, the menu picks the shape)</summary>"
        f'<div id="view{n}" class="view3d" data-spec="spec{n}"></div>'
        f'<script type="application/json" id="spec{n}">{spec}</script></details>'
    )


def _viewer_script() -> str:
    """plotly.js, inlined, and the few lines that draw each view when it scrolls into sight
    (drawing every WebGL scene at load would make a long report slow to open)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return (
            "<script>document.querySelectorAll('.view3d').forEach(d => d.textContent = "
            "'(interactive views need the plotly package when the report is built)')</script>"
        )
    return f"<script>{get_plotlyjs()}</script>\n<script>\n" + _DRAW_VIEWS + "\n</script>"


_DRAW_VIEWS = """
const draw = (div) => {
  if (div.dataset.drawn) return;
  div.dataset.drawn = "1";
  const spec = JSON.parse(document.getElementById(div.dataset.spec).textContent);
  Plotly.newPlot(div, spec.data, spec.layout, {displaylogo: false, responsive: true});
};
const seen = new IntersectionObserver((entries) => entries.forEach((e) => {
  if (e.isIntersecting) { draw(e.target); seen.unobserve(e.target); }
}), {rootMargin: "300px"});
document.querySelectorAll(".view3d").forEach((div) => seen.observe(div));
"""


def _headline(metrics: dict, keys: list[str] | None) -> str:
    cards = []
    for key in keys or []:
        value = metrics
        for part in key.split("/"):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            text = f"{value:.4g}"
        elif value is None:
            continue
        else:
            text = str(value)
        label = key.split("/")[-1]
        cards.append(
            f'<div class="card"><b>{html.escape(text)}</b><span>{_inline(label)}</span></div>'
        )
    return f'<div class="headline">{"".join(cards)}</div>' if cards else ""


def _section(
    root: Path, folder: Path, heading: str, caption: str, headline, captions: dict, figures,
    views: list,
) -> str:  # fmt: skip
    parts = [f"<h2>{_inline(heading)}</h2>"]
    if caption:
        parts.append(f"<p>{_inline(caption)}</p>")
    if (folder / "metrics.json").is_file():
        parts.append(_headline(json.loads((folder / "metrics.json").read_text()), headline))
    for md in sorted(folder.glob("*.md")):
        parts.append(markdown_to_html(md.read_text()))
    extra = [root / f for f in figures or []]
    for png in [*sorted(folder.glob("*.png")), *extra]:
        default = png.stem.replace("_", " ").replace("-", " ")
        key = str(png.relative_to(root)) if png in extra else png.name
        parts.append(_image(png, captions.get(key, default), views))
    return "\n".join(parts)


def build_report(folder: str | Path, *, title: str | None = None) -> Path:
    """Write ``folder/report.html`` from the folder's results and return its path.

    :param folder: a run folder (``pgm3d demo``, ``pgm3d experiment``, ``pgm3d fit`` ...).
    :param title: overrides the layout's title.
    :raises FileNotFoundError: ``folder`` does not exist or holds no results.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such run folder: {folder}")
    layout = {}
    if (folder / LAYOUT_FILE).is_file():
        layout = json.loads((folder / LAYOUT_FILE).read_text())
    sections = layout.get("sections")
    if sections is None:

        def has_results(d: Path) -> bool:
            return any(d.glob("*.png")) or any(d.glob("*.md")) or (d / "metrics.json").exists()

        found = [d for d in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]]
        sections = [
            {"folder": str(d.relative_to(folder)), "heading": d.name}
            for d in found
            if has_results(d)
        ]
    if not sections:
        raise FileNotFoundError(f"{folder} holds no results (tables, metrics.json or PNGs)")
    body = [f"<h1>{_inline(title or layout.get('title', f'pgm3d: {folder.name}'))}</h1>"]
    if layout.get("intro"):
        body.append(markdown_to_html(layout["intro"]))
    views = []
    for s in sections:
        body.append(
            _section(
                folder,
                folder / s["folder"],
                s.get("heading", s["folder"]),
                s.get("caption", ""),
                s.get("headline"),
                s.get("captions", {}),
                s.get("figures"),
                views,
            )
        )
    if views:
        body.append(_viewer_script())
    if layout.get("footer"):
        body.append(f"<footer>{markdown_to_html(layout['footer'])}</footer>")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(layout.get('title', 'pgm3d report'))}</title>"
        f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    return atomic_write_text(folder / REPORT_FILE, page)
