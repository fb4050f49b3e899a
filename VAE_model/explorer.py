"""The latent-space explorer: one self-contained static HTML page of a run (analysis/explore.py).

Everything is embedded in the one file: Bokeh with its JavaScript inlined (``bokeh.resources.INLINE``),
the galaxy thumbnails as small base64 JPEGs, the map coordinates and the precomputed nearest
neighbours as data. The page opens from the file system with no server and no network.

What the page holds
  * the maps of ``maps/embeddings.csv`` (UMAP, t-SNE, PCA; a selector), coloured by a chosen class
    question, outlier score, k-means cluster or survey coverage (a selector); pan/zoom; hover shows
    the thumbnail, name, RA/Dec and class labels;
  * click on a galaxy (or type its name in the search box): its k nearest neighbours as a gallery
    with distances (the run's neighbour graph, the search of analysis/decals_6.py), drawn as rings on
    the map, and a link to the galaxy in the Legacy Surveys sky viewer (a plain link, nothing is
    fetched);
  * the ranked outlier list (outliers/outlier_scores.csv) with thumbnails and scores;
  * Part II, when it ran: the test pairs (DECaLS next to BASS+MzLS), most and least alike by latent
    distance, before adaptation (transfer/distances_before.csv) and after (the adapted method's
    transfer/<method>/distances.csv).

Thumbnails are drawn from the decode-once uint8 cache with the report's colour rendering (the Legacy
Survey viewer's, ``VAE_model.plots.render_rgb``) and the report's orientation (FITS row 0 at the
bottom, as ``plots.save_image_grid`` draws them: north up, east left), then
block-averaged to ``thumbnail_px``.
"""
from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .plots import render_rgb
from .neighbours import build

# Legacy Surveys sky viewer: the URL form used in the Legacy Surveys DR10 documentation
# (https://www.legacysurvey.org/dr10/issues/ links e.g. viewer?ra=80.8916&dec=-69.7567&layer=ls-dr10&zoom=5);
# 'mark' puts a marker at the position; zoom 16 shows a galaxy-sized field. A '+' in a query string
# reads as a space, so the declination is written without one.
VIEWER_URL = "https://www.legacysurvey.org/viewer?ra={ra:.6f}&dec={dec:.6f}&layer=ls-dr10&zoom=16&mark={ra:.6f},{dec:.6f}"
UNLABELLED_COLOUR = "#c4c4c4"      # as the PNG maps of analysis/decals_3.py
PLAIN_COLOUR = "#3b6fb6"
SWATCH_STYLE = "display:inline-block;width:10px;height:10px;margin-right:5px;border-radius:5px;"
RAMP_STYLE = ("display:inline-block;width:150px;height:10px;"
              "background:linear-gradient(to right,#440154,#3b528b,#21918c,#5ec962,#fde725);")
MAP_TITLES = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}
MAP_ORDER = ("umap", "tsne", "pca")
SHORT_SCORE_NAMES = {"combined_score": "comb.", "recon_mse": "MSE", "iforest_score": "IF", "lof_score": "LOF"}
OUTLIER_SCORE_COLUMNS = {"combined_score": "combined outlier score", "recon_mse": "reconstruction MSE",
                         "iforest_score": "isolation forest score", "lof_score": "LOF score"}


# ----------------------------------------------------------------------------- data pieces
def viewer_url(ra: float, dec: float) -> str | None:
    """Link to the galaxy in the Legacy Surveys sky viewer, or None without a finite position."""
    if ra is None or dec is None or not (np.isfinite(ra) and np.isfinite(dec)):
        return None
    return VIEWER_URL.format(ra=float(ra) % 360.0, dec=float(dec))


def thumbnail_uri(image_uint8: np.ndarray, px: int = 48, quality: int = 85) -> str:
    """(3, S, S) uint8 cache image -> 'data:image/jpeg;base64,...' of a px x px colour thumbnail."""
    from PIL import Image

    rgb = render_rgb(np.asarray(image_uint8, dtype=np.uint8))[::-1]   # FITS row 0 at the bottom, as the report
    picture = Image.fromarray(np.ascontiguousarray(rgb), mode="RGB")
    if picture.size != (px, px):
        picture = picture.resize((px, px), Image.Resampling.BOX)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def thumbnails(cache, rows, px: int = 48, quality: int = 85, progress: bool = False, desc: str = "thumbnails") -> list[str]:
    """Thumbnail data URIs of the cache rows ``rows``."""
    from tqdm import tqdm

    rows = list(rows)
    return [thumbnail_uri(cache[int(r)], px, quality)
            for r in tqdm(rows, desc=desc, unit="img", disable=not progress or len(rows) < 200)]


def all_neighbours(mu: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Rows (N, k) and distances (N, k) of the k nearest neighbours of every row of ``mu``, the galaxy
    itself excluded: the search of analysis/decals_6.py (``VAE_model.neighbours``: exact below its size
    threshold, HNSW above, so N log N), run for every galaxy at once. analysis/explore.py reads the
    run's stored graph instead (``neighbours.run_neighbours``)."""
    return build(mu).graph(k)


def categorical_colours(labels, palette=None) -> tuple[list[str], list[tuple[str, str, int]]]:
    """Per-galaxy hex colours of a label column (NaN/'' -> grey) and the legend [(label, colour, count)]."""
    from bokeh.palettes import Category10_10, Category20_20

    values = pd.Series(labels, dtype=object)
    known = values.notna() & (values.astype(str) != "")
    levels = sorted(values[known].astype(str).unique(), key=_natural_key)
    palette = palette or (Category10_10 if len(levels) <= 10 else Category20_20)
    colour_of = {level: palette[i % len(palette)] for i, level in enumerate(levels)}
    colours = [colour_of[str(v)] if ok else UNLABELLED_COLOUR for v, ok in zip(values, known)]
    counts = values[known].astype(str).value_counts()
    legend = [(level, colour_of[level], int(counts[level])) for level in levels]
    if (~known).any():
        legend.append(("no label", UNLABELLED_COLOUR, int((~known).sum())))
    return colours, legend


def _natural_key(text: str):
    return (0, int(text)) if text.isdigit() else (1, text)


def continuous_colours(values) -> tuple[list[str], tuple[float, float]]:
    """Per-galaxy Viridis colours by the rank of the value (percentile: skewed scores stay readable);
    NaN -> grey. Returns the colours and the (min, max) of the finite values."""
    from bokeh.palettes import Viridis256

    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    colours = np.full(len(values), UNLABELLED_COLOUR, dtype=object)
    if finite.any():
        ranks = pd.Series(values[finite]).rank(method="average").to_numpy()
        fraction = (ranks - 1) / max(finite.sum() - 1, 1)
        colours[finite] = [Viridis256[int(round(f * 255))] for f in fraction]
        return list(colours), (float(values[finite].min()), float(values[finite].max()))
    return list(colours), (float("nan"), float("nan"))


@dataclass
class Colouring:
    """One entry of the colour selector: a colour per galaxy and the legend's HTML."""

    key: str
    title: str
    colours: list[str]
    legend_html: str


def categorical_colouring(key: str, title: str, labels) -> Colouring:
    colours, legend = categorical_colours(labels)
    # inline styles: the legend is a Bokeh Div, drawn in a shadow DOM that the page's CSS does not reach
    items = "".join(f'<span style="{SWATCH_STYLE}background:{c}"></span>{html.escape(label)} ({n})<br>'
                    for label, c, n in legend)
    return Colouring(key, title, colours, f"<b>{html.escape(title)}</b><br>{items}")


def continuous_colouring(key: str, title: str, values) -> Colouring:
    colours, (low, high) = continuous_colours(values)
    legend = (f"<b>{html.escape(title)}</b><br>colour = percentile of the score<br>"
              f'<span style="{RAMP_STYLE}"></span><br>low {low:.4g} &rarr; high {high:.4g}')
    return Colouring(key, title, colours, legend)


def plain_colouring(n: int) -> Colouring:
    return Colouring("none", "no colouring", [PLAIN_COLOUR] * n, "<b>no colouring</b>")


@dataclass
class PairGallery:
    """Cross-survey pairs for one model: (title, rows of (name, bass name, distance, DECaLS uri, BASS uri))."""

    title: str
    most_alike: list[tuple]
    least_alike: list[tuple]


@dataclass
class ExplorerData:
    """Everything the page shows, in page order (one row per galaxy drawn on the map)."""

    names: list[str]
    ra: np.ndarray
    dec: np.ndarray
    labels: list[str]                       # 'question: label; ...' per galaxy (hover)
    maps: dict[str, np.ndarray]             # 'umap' -> (N, 2), NaN where a map left a galaxy out
    thumbs: list[str]
    neighbour_rows: np.ndarray              # (N, k) page rows of the neighbours (-1: not on the page)
    neighbour_distances: np.ndarray         # (N, k)
    colourings: list[Colouring]
    default_colouring: str
    outliers: pd.DataFrame | None = None    # ranked rows: page_row, name, rank, the score columns
    outlier_thumbs: list[str] = field(default_factory=list)
    pairs: list[PairGallery] = field(default_factory=list)
    off_page_names: dict = field(default_factory=dict)   # 'row:j' -> name of an off-page neighbour
    title: str = "Galaxy_VAE latent-space explorer"
    notes: list[str] = field(default_factory=list)   # lines under the title: run, model, distance


# ----------------------------------------------------------------------------- the page
PAGE_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0 18px 30px 18px; color: #222; }
h1 { font-size: 1.35em; margin: 12px 0 2px 0; } h2 { font-size: 1.1em; margin: 22px 0 6px 0; }
.notes { color: #555; font-size: 0.85em; margin: 0 0 8px 0; }
.searchbar { margin: 6px 0; font-size: 0.9em; }
.searchbar input { width: 230px; } #search-status { color: #a33; margin-left: 8px; }
#gallery { min-height: 150px; border-top: 1px solid #ddd; padding-top: 6px; }
.cards { display: flex; flex-wrap: wrap; gap: 6px; }
.card { width: 104px; font-size: 0.72em; text-align: center; cursor: pointer; overflow-wrap: anywhere; }
.card img, .pair img { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #ccc; }
.card.query img { border: 3px solid #d62728; width: 92px; height: 92px; }
.card .d { color: #444; font-weight: 600; }
.card .blank { width: 96px; height: 96px; margin: 0 auto; background: #eee; color: #888; line-height: 96px; }
.card:hover { background: #f3f6fb; }
.card.outlier img { width: 72px; height: 72px; }
.pairs { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 8px; }
.pair { width: 104px; font-size: 0.7em; text-align: center; overflow-wrap: anywhere; }
.pair img { display: block; margin: 0 auto 1px auto; width: 72px; height: 72px; }
.muted { color: #777; font-size: 0.85em; }
"""

PAGE_JS = """
window.explorer = (function () {
  const NB = JSON.parse(document.getElementById('explorer-neighbours').textContent);
  let current = -1;
  function doc() { return Bokeh.documents[0]; }
  function galaxies() { return doc().get_model_by_name('galaxies'); }
  function esc(s) { return String(s).replace(/[&<>"']/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c])); }
  function viewer(ra, dec) {
    if (!isFinite(ra) || !isFinite(dec)) return '';
    const r = ((ra % 360) + 360) % 360;
    const u = NB.viewer.replaceAll('{ra}', r.toFixed(6)).replaceAll('{dec}', Number(dec).toFixed(6));
    return '<a href="' + u + '" target="_blank" rel="noopener">sky viewer</a>';
  }
  function label(name) { return esc(name).replace(/([+-])/, '<wbr>$1'); }
  function card(d, row, rank, dist) {
    const cls = rank === 0 ? 'card query' : 'card neighbour';
    const head = rank === 0 ? 'query' : '#' + rank + ' <span class="d">d = ' + dist.toFixed(3) + '</span>';
    return '<div class="' + cls + '" data-name="' + esc(d.name[row]) + '" data-row="' + row + '" onclick="explorer.select(' + row + ')">' +
      head + '<br><img alt="' + esc(d.name[row]) + '" data-name="' + esc(d.name[row]) + '" src="' + d.thumb[row] + '"><br>' +
      label(d.name[row]) + '<br>' + viewer(d.ra[row], d.dec[row]) + '</div>';
  }
  function show(row) {
    const d = galaxies().data_source.data;
    if (row < 0 || row >= d.name.length) return;
    current = row;
    const rows = NB.rows[row], dists = NB.dist[row];
    let html = '<div class="muted">' + esc(d.name[row]) + ': RA ' + Number(d.ra[row]).toFixed(5) + ', Dec ' +
      Number(d.dec[row]).toFixed(5) + (d.labels[row] ? '; ' + esc(d.labels[row]) : '') + ' &mdash; ' +
      rows.length + ' nearest neighbours, ' + esc(NB.distance) + ' ' + viewer(d.ra[row], d.dec[row]) + '</div>';
    html += '<div class="cards">' + card(d, row, 0, 0);
    for (let j = 0; j < rows.length; j++) {
      if (rows[j] >= 0) { html += card(d, rows[j], j + 1, dists[j]); continue; }
      const name = NB.off[row + ':' + j] || '?';   // a neighbour not drawn on this page (--max-galaxies)
      html += '<div class="card neighbour off" data-name="' + esc(name) + '">#' + (j + 1) + ' <span class="d">d = ' +
        dists[j].toFixed(3) + '</span><br><div class="blank">not on this page</div>' + label(name) + '</div>';
    }
    document.getElementById('gallery').innerHTML = html + '</div>';
    const hx = [d.x[row]], hy = [d.y[row]], kind = ['query'];
    for (const r of rows) { if (r >= 0) { hx.push(d.x[r]); hy.push(d.y[r]); kind.push('neighbour'); } }
    const hl = doc().get_model_by_name('highlight').data_source;
    hl.data = {x: hx, y: hy, kind: kind, size: kind.map(k => k === 'query' ? 16 : 10),
               color: kind.map(k => k === 'query' ? '#d62728' : '#111111')};
  }
  function select(row) {
    const src = galaxies().data_source;
    src.selected.indices = [row];
    show(row);
  }
  function find(name) {
    const d = galaxies().data_source.data;
    const wanted = String(name).trim();
    const row = d.name.indexOf(wanted);
    const status = document.getElementById('search-status');
    if (row < 0) { status.textContent = 'no galaxy named ' + wanted + ' on this page'; return -1; }
    status.textContent = '';
    select(row);
    return row;
  }
  function refresh() { if (current >= 0) show(current); }
  function shown() {
    return Array.from(document.querySelectorAll('#gallery .card.neighbour')).map(e => e.dataset.name);
  }
  return {show: show, select: select, find: find, refresh: refresh, shown: shown};
})();
document.getElementById('search').addEventListener('keydown', e => { if (e.key === 'Enter') explorer.find(e.target.value); });
"""

MAP_JS = """
const d = Object.assign({}, src.data);
d.x = d[map.value + '_1']; d.y = d[map.value + '_2'];
src.data = d;
plot.xaxis[0].axis_label = titles[map.value] + ' 1'; plot.yaxis[0].axis_label = titles[map.value] + ' 2';
plot.reset.emit();
if (window.explorer) window.explorer.refresh();
"""

COLOUR_JS = """
const d = Object.assign({}, src.data);
d.color = d['c_' + colour.value];
src.data = d;
legend.text = legends[colour.value];
"""

TAP_JS = "if (cb_obj.indices.length && window.explorer) window.explorer.show(cb_obj.indices[0]);"

TOOLTIP = """
<div style="width: 210px; font-size: 11px;">
  <img src="@thumb" width="96" height="96" style="image-rendering: pixelated; border: 1px solid #ccc;"><br>
  <b>@name</b><br>RA @ra{0.00000}, Dec @dec{0.00000}<br>@labels
</div>
"""


def _wrap_name(name: str) -> str:
    """An IAU name that may break before the declination's sign (J130700.87<wbr>+284254.1)."""
    escaped = html.escape(name)
    for sign in "+-":
        if sign in escaped:
            return escaped.replace(sign, "<wbr>" + sign, 1)
    return escaped


def _pair_html(gallery: PairGallery) -> str:
    def cards(rows):
        return "".join(f'<div class="pair"><img src="{d_uri}" alt="DECaLS {html.escape(name)}" title="DECaLS">'
                       f'<img src="{b_uri}" alt="BASS+MzLS {html.escape(bass)}" title="BASS+MzLS">'
                       f'{_wrap_name(name)}<br>d = {distance:.3f}</div>' for name, bass, distance, d_uri, b_uri in rows)
    return (f"<h3 style='font-size:0.95em'>{html.escape(gallery.title)}</h3>"
            f"<div class='muted'>most alike (top: DECaLS, bottom: BASS+MzLS)</div><div class='pairs'>{cards(gallery.most_alike)}</div>"
            f"<div class='muted'>least alike</div><div class='pairs'>{cards(gallery.least_alike)}</div>")


def _outlier_html(data: ExplorerData) -> str:
    """The ranked outliers as a grid of cards: rank, thumbnail, name, the scores (click: its neighbours)."""
    if data.outliers is None or not len(data.outliers):
        return "<p class='muted'>No outlier scores in this run (analysis/decals_4.py writes outliers/outlier_scores.csv).</p>"
    columns = [c for c in OUTLIER_SCORE_COLUMNS if c in data.outliers.columns]
    cards = []
    for (_, row), uri in zip(data.outliers.iterrows(), data.outlier_thumbs):
        scores = "<br>".join(f"{html.escape(SHORT_SCORE_NAMES.get(c, c))} {row[c]:.3g}" for c in columns)
        click = f"explorer.select({int(row.page_row)}); document.getElementById('neighbours-title').scrollIntoView()"
        cards.append(f'<div class="card outlier" data-name="{html.escape(row["name"])}" onclick="{click}">'
                     f'#{int(row["rank"])}<br><img src="{uri}" alt="{html.escape(row["name"])}"><br>'
                     f'{_wrap_name(row["name"])}<br><span class="muted">{scores}</span></div>')
    legend = ", ".join(f"{SHORT_SCORE_NAMES.get(c, c)} = {OUTLIER_SCORE_COLUMNS[c]}" for c in columns)
    return (f"<div class='muted'>ranked by outliers/outlier_scores.csv (rank 1 = most unusual); {html.escape(legend)}; "
            f"click one for its neighbours</div><div class='cards'>{''.join(cards)}</div>")


def _notebooks_html() -> str:
    """Links to the executed notebooks, RUN/notebooks/<name>.html (analysis/notebooks.py; make demo writes
    them), relative to RUN/explorer/ so they work while the page stays in its run directory."""
    from .notebooks import NOTEBOOKS

    items = "".join(f'<li><a href="../{n.html}">{html.escape(n.title)}</a> (<a href="../{n.executed}">notebook</a>)</li>'
                    for n in NOTEBOOKS)
    return (f"<ul>{items}</ul><p class='muted'>Each notebook executed against this run, with its figures "
            "(analysis/notebooks.py, run by make demo); the links work while this page stays in the run directory.</p>")


def build_page(data: ExplorerData, k: int, distance_note: str) -> str:
    """The page as one HTML string (Bokeh JS/CSS inlined)."""
    from bokeh.core.templates import get_env
    from bokeh.embed import file_html
    from bokeh.layouts import column, row
    from bokeh.models import (ColumnDataSource, CustomJS, Div, HoverTool, Select, TapTool)
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    n = len(data.names)
    available = [m for m in MAP_ORDER if m in data.maps]
    first = available[0]
    columns = {"name": list(data.names), "ra": np.asarray(data.ra, float), "dec": np.asarray(data.dec, float),
               "labels": list(data.labels), "thumb": list(data.thumbs)}
    for m in available:
        columns[f"{m}_1"], columns[f"{m}_2"] = data.maps[m][:, 0].astype(float), data.maps[m][:, 1].astype(float)
    columns["x"], columns["y"] = columns[f"{first}_1"], columns[f"{first}_2"]
    by_key = {c.key: c for c in data.colourings}
    for c in data.colourings:
        columns[f"c_{c.key}"] = c.colours
    columns["color"] = by_key[data.default_colouring].colours
    source = ColumnDataSource(columns)

    plot = figure(width=780, height=600, tools="pan,wheel_zoom,box_zoom,reset,save", active_scroll="wheel_zoom",
                  x_axis_label=f"{MAP_TITLES[first]} 1", y_axis_label=f"{MAP_TITLES[first]} 2", name="map",
                  title=f"{n} galaxies (mu of the Part I model, analysis/decals_3.py maps)")
    points = plot.scatter("x", "y", source=source, size=6, fill_color="color", line_color=None, fill_alpha=0.8,
                          name="galaxies", nonselection_fill_alpha=0.8, selection_fill_color="color",
                          selection_line_color=None)
    highlight = ColumnDataSource({"x": [], "y": [], "kind": [], "size": [], "color": []})
    plot.scatter("x", "y", source=highlight, size="size", fill_color=None, line_color="color", line_width=2,
                 name="highlight")
    plot.add_tools(HoverTool(renderers=[points], tooltips=TOOLTIP), TapTool(renderers=[points]))
    source.selected.js_on_change("indices", CustomJS(code=TAP_JS))

    map_select = Select(title="map", value=first, options=[(m, MAP_TITLES[m]) for m in available], width=200,
                        name="map_select")
    colour_select = Select(title="colour by", value=data.default_colouring,
                           options=[(c.key, c.title) for c in data.colourings], width=200, name="colour_select")
    legend = Div(text=by_key[data.default_colouring].legend_html, width=200, name="legend",
                 styles={"font-size": "12px"})
    map_select.js_on_change("value", CustomJS(args=dict(src=source, map=map_select, plot=plot, titles=MAP_TITLES),
                                              code=MAP_JS))
    colour_select.js_on_change("value", CustomJS(args=dict(src=source, colour=colour_select, legend=legend,
                                                           legends={c.key: c.legend_html for c in data.colourings}),
                                                 code=COLOUR_JS))
    layout = row(column(map_select, colour_select, legend), plot, name="explorer")

    neighbours = {"k": int(k), "distance": distance_note, "viewer": VIEWER_URL.replace("{ra:.6f}", "{ra}").replace("{dec:.6f}", "{dec}"),
                  "rows": np.asarray(data.neighbour_rows, int).tolist(), "off": data.off_page_names,
                  "dist": np.round(np.asarray(data.neighbour_distances, float), 4).tolist()}
    datalist = "".join(f'<option value="{html.escape(name)}">' for name in data.names)
    notes = "".join(f"<div>{html.escape(line)}</div>" for line in data.notes)
    pairs = ("".join(_pair_html(g) for g in data.pairs) if data.pairs else
             "<p class='muted'>Part II did not run in this run directory (no transfer/distances_before.csv).</p>")
    template = get_env().from_string("""{% extends "file.html.jinja" %}
{% block postamble %}<style>{{ css }}</style>{% endblock %}
{% block contents %}
<h1>{{ title }}</h1><div class="notes">{{ notes }}</div>
<div class="searchbar">search by name: <input id="search" list="galaxy-names" placeholder="e.g. {{ example }}">
<datalist id="galaxy-names">{{ datalist }}</datalist>
<button onclick="explorer.find(document.getElementById('search').value)">show neighbours</button>
<span id="search-status"></span> <span class="muted">or click a galaxy on the map</span></div>
{{ embed(roots.explorer) }}
<h2 id="neighbours-title">Nearest neighbours</h2>
<div id="gallery"><p class="muted">Click a galaxy on the map, or search for a name, to see its {{ k }} nearest neighbours.</p></div>
<h2>Outliers (most unusual first)</h2>{{ outliers }}
<h2>Cross-survey pairs: DECaLS and BASS+MzLS images of the same galaxy</h2>{{ pairs }}
<h2>Notebooks</h2>{{ notebooks }}
<script type="application/json" id="explorer-neighbours">{{ neighbours }}</script>
<script>{{ js }}</script>
{% endblock %}""")
    variables = {"css": PAGE_CSS, "js": PAGE_JS, "title": html.escape(data.title), "notes": notes, "k": int(k),
                 "example": html.escape(data.names[0]) if n else "", "datalist": datalist,
                 "outliers": _outlier_html(data), "pairs": pairs, "notebooks": _notebooks_html(),
                 "neighbours": json.dumps(neighbours, separators=(",", ":")).replace("</", "<\\/")}
    return file_html(layout, resources=INLINE, title=data.title, template=template, template_variables=variables)


__all__ = ["VIEWER_URL", "viewer_url", "thumbnail_uri", "thumbnails", "all_neighbours", "categorical_colouring",
           "continuous_colouring", "plain_colouring", "Colouring", "PairGallery", "ExplorerData", "build_page"]
