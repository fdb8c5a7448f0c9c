"""The HTML report: markdown tables, embedded images, layouts."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from pgm3d.viz.report import build_report, markdown_to_html


def _png(path):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    fig.savefig(path)
    plt.close(fig)


def test_markdown_tables_headings_lists_and_inline_code():
    html = markdown_to_html(
        "# Title\n\nSome **bold** `code` <b>.\n\n| a | b |\n|---|---:|\n| x | 1.5e-3 |\n"
        "| y | ± |\n\n- one\n- two\n"
    )
    assert "<h3>Title</h3>" in html  # a file's headings sit under the section's h2
    assert "<b>bold</b> <code>code</code> &lt;b&gt;." in html
    assert html.count("<tr>") == 3 and '<td class="num">1.5e-3</td>' in html
    assert "<ul><li>one</li><li>two</li></ul>" in html


def test_a_folder_without_a_layout_gets_a_section_per_result_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "table.md").write_text("| m | v |\n|---|---|\n| x | 1 |\n")
    _png(tmp_path / "a" / "fig_one.png")
    (tmp_path / "empty").mkdir()
    page = build_report(tmp_path).read_text()
    assert page.count("<h2>") == 1 and "<h2>a</h2>" in page
    assert page.count("data:image/png;base64,") == 1 and "fig one" in page


def test_a_layout_orders_sections_with_captions_headlines_and_extra_figures(tmp_path):
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
    _png(tmp_path / "y" / "p.png")
    (tmp_path / "x" / "metrics.json").write_text(json.dumps({"h": {"acc": 0.91234}}))
    layout = {
        "title": "T",
        "intro": "Intro **text**.",
        "sections": [
            {
                "folder": "x",
                "heading": "Second",
                "headline": ["h/acc", "h/missing"],
                "figures": ["y/p.png"],
                "captions": {"y/p.png": "borrowed"},
            },
            {"folder": "y", "heading": "Third", "captions": {"p.png": "own"}},
        ],
        "footer": "made by `pgm3d`",
    }
    (tmp_path / "report.json").write_text(json.dumps(layout))
    page = build_report(tmp_path, title="Override").read_text()
    assert "<h1>Override</h1>" in page and page.index("Second") < page.index("Third")
    assert '<div class="card"><b>0.9123</b><span>acc</span></div>' in page
    assert "borrowed" in page and "own" in page and page.count("base64,") == 2
    assert "<footer>" in page


def test_missing_or_empty_folders_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run folder"):
        build_report(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="holds no results"):
        build_report(tmp_path)
