"""The page: one self-contained, printable HTML file; tables and charts rendered once, here.

No script, no font, no stylesheet from the network: a report mailed as an
attachment or opened years later from disk looks the same.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable
from typing import Any

__all__ = ["chart", "escape", "page", "section", "table", "note"]

CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1100px;margin:0 auto;
     padding:1.5em;color:#1b1f24}
h1{font-size:1.6em;margin-bottom:.2em} h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.4em} .sub{color:#57606a}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em} th,td{border:1px solid #d0d7de;padding:.25em .5em}
th{background:#f6f8fa;text-align:left} td{text-align:left} td.n{text-align:right}
code{background:#f6f8fa;padding:0 .25em;border-radius:3px;font-size:.92em}
.decision{background:#f0f7ff;border:1px solid #8cb4e0;border-radius:6px;padding:.6em 1.2em}
.answer{font-size:1.25em;font-weight:600}
.fig{font-weight:600} .fact{border-bottom:1px dotted #57606a}
.gap{color:#8a4b00} img{max-width:100%;height:auto;display:block;margin:.6em 0}
pre{background:#f6f8fa;padding:.6em;overflow-x:auto;font-size:.85em}
nav a{margin-right:1em} .tw{overflow-x:auto;max-width:100%}
@media print{body{max-width:none;font-size:11pt;padding:0} nav{display:none}
  h2{page-break-before:auto;page-break-after:avoid} img,table{page-break-inside:avoid}
  .tw{overflow:visible} table{font-size:7.5pt}}
"""


def escape(text: Any) -> str:
    return html.escape(str(text))


def note(text: str) -> str:
    """A sentence that says what a section lacks (``text`` is HTML)."""
    return f'<p class="gap">{text}</p>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>\n{body}\n</section>'


def table(df: Any, digits: int = 1) -> str:
    """A pandas frame as an HTML table: numbers rounded, right-aligned and thousands-separated; gaps a dash."""
    if df is None or len(df) == 0:
        return note("No rows.")

    def cell(value: Any) -> str:
        if isinstance(value, bool) or value is None:
            return f"<td>{escape('-' if value is None else value)}</td>"
        if isinstance(value, int) or (hasattr(value, "dtype") and value.dtype.kind in "iu"):
            return f'<td class="n">{int(value):,}</td>'
        if isinstance(value, float) or (hasattr(value, "dtype") and value.dtype.kind == "f"):
            value = float(value)
            if value != value:  # NaN
                return '<td class="n">-</td>'
            text = f"{value:,.0f}" if value.is_integer() and abs(value) >= 1000 else f"{value:,.{digits}f}"
            return f'<td class="n">{text}</td>'
        return f"<td>{escape(value)}</td>"

    head = "".join(f"<th>{escape(c)}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in df.itertuples(index=False))
    return f'<div class="tw"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def chart(fig: Any, alt: str) -> str:
    """A matplotlib figure as an inline PNG (base64), closed afterwards."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def page(title: str, subtitle: str, sections: Iterable[tuple[str, str, str]]) -> str:
    parts = list(sections)
    nav = " ".join(f'<a href="#{a}">{escape(t)}</a>' for a, t, _ in parts)
    body = "\n".join(section(a, t, b) for a, t, b in parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
        f'<h1>{escape(title)}</h1><p class="sub">{subtitle}</p><nav>{nav}</nav>\n{body}\n</body></html>\n'
    )
