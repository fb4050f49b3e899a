"""The explorer page (analysis/explore.py, VAE_model/explorer.py) on a tiny run, opened in headless Chromium.

The run is test_analysis_latents' ``trained_run`` (48 fake cutouts, a VAE trained one epoch, Galaxy Zoo
style classes, latents), plus the maps (decals_3, PCA and t-SNE), outlier scores (decals_4) and
Part II files made here (pairs of the same cutouts under other names, latent distances). The browser
tests use Debian's chromium + chromedriver (Selenium with the system driver, nothing downloaded) and
skip with the reason where they are not installed.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_analysis_latents import trained_run  # noqa: F401  (the tiny trained run, reused as this module's fixture)

from analysis import decals_3, decals_4, decals_6, explore
from VAE_model import provenance, readers, runfiles
from VAE_model.explorer import thumbnail_uri, viewer_url
from VAE_model.similarity import build_index, nearest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
N_GALAXIES = 48


def add_part2(run: Path) -> None:
    """Part II files as transfer/ writes them: 12 pairs (the 'BASS+MzLS' image of pair i is cutout i + 12)."""
    names = pd.read_csv(run / runfiles.LATENT_NAMES)
    mu = np.load(run / runfiles.LATENT_MU)
    ids = np.arange(12)
    pairs = pd.DataFrame({"pair_id": ids, "decals_iauname": names["name"][ids].to_numpy(),
                          "bass_iauname": [f"B{i:06d}+300000.0" for i in ids], "ra": 180.0 + 0.01 * ids, "dec": 30.0,
                          "sep_arcsec": 0.2, "split": np.where(ids < 6, "test", "train"),
                          "decals_path": names["path"][ids].to_numpy(), "bass_path": names["path"][ids + 12].to_numpy()})
    (run / runfiles.TRANSFER_DIR / "mmd").mkdir(parents=True, exist_ok=True)
    pairs.to_csv(run / runfiles.TRANSFER_PAIRS_CSV, index=False)
    (run / runfiles.TRANSFER_DECALS_LIST).write_text("".join(f"{p}\n" for p in pairs["decals_path"]))
    (run / runfiles.TRANSFER_BASS_LIST).write_text("".join(f"{p}\n" for p in pairs["bass_path"]))
    distance = np.linalg.norm(mu[ids] - mu[ids + 12], axis=1)
    for path, scale in ((runfiles.TRANSFER_DISTANCES_BEFORE, 1.0), (runfiles.ADAPT_DISTANCES_CSV.format(method="mmd"), 0.5)):
        pairs[["pair_id", "split", "decals_iauname", "bass_iauname"]].assign(
            latent_distance=distance * scale, retrieval_rank=1).to_csv(run / path, index=False)
    (run / runfiles.TRANSFER_ADAPTED_JSON).write_text(json.dumps({"method": "mmd"}))
    # provenance as transfer/ records it, so the readers take these files as current
    lists = {runfiles.TRANSFER_DECALS_LIST: pairs["decals_path"], runfiles.TRANSFER_BASS_LIST: pairs["bass_path"]}
    provenance.record(run, [runfiles.TRANSFER_PAIRS_CSV, *lists],
                      [provenance.Input.images(run / name, list(paths)) for name, paths in lists.items()],
                      "transfer/make_pairs.py")
    provenance.record(run, [runfiles.TRANSFER_DISTANCES_BEFORE], [provenance.Input.file(run / runfiles.TRANSFER_PAIRS_CSV)],
                      "transfer/no_tf.py")
    provenance.record(run, [runfiles.ADAPT_DISTANCES_CSV.format(method="mmd"), runfiles.TRANSFER_ADAPTED_JSON],
                      [provenance.Input.file(run / runfiles.TRANSFER_PAIRS_CSV)], "transfer/evaluate.py")


@pytest.fixture(scope="module")
def explored_run(trained_run):  # noqa: F811
    common = ["--run", str(trained_run), "--seed", "0", "--device", "cpu"]
    assert decals_3.main([*common, "--methods", "pca", "--thumbnails", "0"]) == 0
    # a second map so the page has a map selector (t-SNE/UMAP would cost seconds): PCA mirrored, as 'umap'
    embeddings = pd.read_csv(trained_run / runfiles.MAP_EMBEDDINGS_CSV)
    embeddings.assign(umap_1=-embeddings["pca_1"], umap_2=embeddings["pca_2"]).to_csv(
        trained_run / runfiles.MAP_EMBEDDINGS_CSV, index=False)
    provenance.record(trained_run, [runfiles.MAP_EMBEDDINGS_CSV], readers.latents_inputs(trained_run), "analysis/decals_3.py")
    assert decals_4.main([*common, "--mock-dir", "none", "--top", "4"]) == 0
    add_part2(trained_run)
    assert explore.main([*common, "--quiet"]) == 0
    return trained_run


def decals_6_neighbours(run: Path, name: str) -> list[str]:
    assert decals_6.main(["--run", str(run), "--name", name, "--quiet", "--device", "cpu"]) == 0
    return pd.read_csv(run / "similarity" / f"query_{name}.csv", dtype={"name": str})["name"].tolist()


# ----------------------------------------------------------------------------- without a browser
def test_the_page_is_one_self_contained_file(explored_run):
    page = (explored_run / runfiles.EXPLORER_HTML).read_text()
    record = json.loads((explored_run / runfiles.EXPLORER_CONFIG_JSON).read_text())
    assert record["n_on_page"] == N_GALAXIES and record["page_bytes"] == len(page.encode())
    assert record["maps"] == ["umap", "pca"] and record["model"] == "part1"
    # no external resource: no tag loads anything but inline data (sky-viewer links are <a>, opened on click)
    markup = re.sub(r"(<script\b[^>]*>).*?</script>", r"\1</script>", page, flags=re.S)   # the tags, not the JS
    external = re.findall(r"<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*(?:\"|'|(?=[^\"']))(?!data:)([^\"' >]*)", markup)
    assert external == []
    assert "cdn.bokeh.org" not in page and "<script src" not in page
    assert page.count("data:image/jpeg;base64,") >= N_GALAXIES


def test_neighbours_embedded_in_the_page_are_those_of_decals_6(explored_run):
    page = (explored_run / runfiles.EXPLORER_HTML).read_text()
    payload = page.split('<script type="application/json" id="explorer-neighbours">')[1].split("</script>")[0]
    embedded = json.loads(payload)
    names = pd.read_csv(explored_run / runfiles.LATENT_NAMES, dtype={"name": str})["name"].tolist()
    for row in (0, 17):
        assert [names[r] for r in embedded["rows"][row]] == decals_6_neighbours(explored_run, names[row])
    mu = np.load(explored_run / runfiles.LATENT_MU)
    rows, distances = nearest(build_index(mu), mu, mu[[5]], 10, exclude=[5])
    np.testing.assert_allclose(embedded["dist"][5], distances[0], atol=1e-3)


def test_thumbnails_are_small_jpegs_in_the_report_orientation():
    image = np.zeros((3, 64, 64), np.uint8)
    image[:, :8, :] = 255        # bottom rows of the array (origin='lower' in the report) are white
    uri = thumbnail_uri(image, px=16)
    from io import BytesIO

    from PIL import Image

    picture = np.asarray(Image.open(BytesIO(base64.b64decode(uri.split(",", 1)[1]))))
    assert picture.shape == (16, 16, 3)
    assert picture[-1].mean() > picture[0].mean() + 100      # drawn at the bottom, as imshow(origin='lower')


def test_viewer_link_is_built_from_ra_dec():
    assert viewer_url(196.75362, 28.71503) == ("https://www.legacysurvey.org/viewer?ra=196.753620&dec=28.715030"
                                               "&layer=ls-dr10&zoom=16&mark=196.753620,28.715030")
    assert viewer_url(10.0, -5.5).count("dec=-5.500000") == 1 and viewer_url(float("nan"), 1.0) is None


def test_label_free_run_without_outliers_gives_an_uncoloured_page(explored_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(explored_run, run, ignore=shutil.ignore_patterns("cache"))
    for folder in ("selection", "outliers", "transfer", "explorer"):
        shutil.rmtree(run / folder, ignore_errors=True)
    assert explore.main(["--run", str(run), "--quiet"]) == 0
    record = json.loads((run / runfiles.EXPLORER_CONFIG_JSON).read_text())
    assert record["default_colouring"] == "none" and "cluster" in record["colourings"]
    assert record["n_outliers_listed"] == 0 and record["pair_galleries"] == []
    assert record["positions"] == "FITS headers"


def test_missing_maps_name_the_stage_to_run(explored_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(explored_run, run, ignore=shutil.ignore_patterns("cache", "maps", "explorer"))
    assert explore.main(["--run", str(run), "--quiet"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "embeddings.csv" in error and "analysis/decals_3.py" in error


# ----------------------------------------------------------------------------- in headless Chromium
@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"no headless browser: {CHROMIUM} or {CHROMEDRIVER} missing "
                    "(Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1300,1500", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    from selenium.common.exceptions import WebDriverException

    try:   # the system driver, so Selenium Manager downloads nothing
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    except WebDriverException as error:
        pytest.skip(f"headless Chromium did not start ({CHROMIUM}, {CHROMEDRIVER}): {str(error).splitlines()[0]}")
    yield driver
    driver.quit()


def open_page(driver, page: Path) -> float:
    """Open the page from the file system; seconds until Bokeh has drawn the map."""
    start = time.perf_counter()
    driver.get(page.resolve().as_uri())
    deadline = start + 20
    while time.perf_counter() < deadline:
        if driver.execute_script("return !!(window.Bokeh && Bokeh.documents.length && "
                                 "Bokeh.documents[0].get_model_by_name('galaxies') && "
                                 "Object.keys(Bokeh.index || {}).length)"):
            return time.perf_counter() - start
        time.sleep(0.02)
    raise AssertionError(f"{page}: the map did not render within 20 s in headless Chromium")


def test_page_in_chromium_draws_every_galaxy_and_shows_decals_6_neighbours(explored_run, browser, tmp_path):
    page = explored_run / runfiles.EXPLORER_HTML
    seconds = open_page(browser, page)
    n_points = browser.execute_script(
        "return Bokeh.documents[0].get_model_by_name('galaxies').data_source.data['x'].length")
    assert n_points == N_GALAXIES
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)"
                                     ".filter(n => !n.startsWith('data:'))")
    assert fetched == []                # nothing loaded besides the page itself
    names = pd.read_csv(explored_run / runfiles.LATENT_NAMES, dtype={"name": str})["name"].tolist()
    query = names[7]
    box = browser.find_element("id", "search")
    box.clear()
    box.send_keys(query + "\n")
    shown = browser.execute_script("return explorer.shown()")
    assert len(shown) == 10
    assert shown == decals_6_neighbours(explored_run, query)
    images_loaded = browser.execute_script(
        "return Array.from(document.querySelectorAll('#gallery img')).filter(i => i.complete && i.naturalWidth > 0).length")
    assert images_loaded == 11          # the query and its 10 neighbours, decoded from the embedded data
    ringed = browser.execute_script("return Bokeh.documents[0].get_model_by_name('highlight').data_source.data['x'].length")
    assert ringed == 11
    link = browser.execute_script("return document.querySelector('#gallery .card.query a').href")
    ra, dec = pd.read_csv(explored_run / runfiles.CATALOG_INDEX_CSV).set_index("iauname").loc[query, ["ra", "dec"]]
    assert link == viewer_url(ra, dec)
    # a click on the map selects the point (what the tap tool does): the gallery follows
    browser.execute_script("Bokeh.documents[0].get_model_by_name('galaxies').data_source.selected.indices = [3]")
    assert browser.execute_script("return document.querySelector('#gallery .card.query').dataset.name") == names[3]
    assert browser.execute_script("return explorer.shown()") == decals_6_neighbours(explored_run, names[3])
    # switch map and colouring: the point count stays, coordinates follow the chosen map
    browser.execute_script("const s = Bokeh.documents[0].get_model_by_name('map_select'); s.value = 'pca';"
                           "const c = Bokeh.documents[0].get_model_by_name('colour_select'); c.value = 'score_combined_score';")
    x = browser.execute_script("return Array.from(Bokeh.documents[0].get_model_by_name('galaxies').data_source.data['x'])")
    embeddings = pd.read_csv(explored_run / runfiles.MAP_EMBEDDINGS_CSV).sort_values("image_index")
    np.testing.assert_allclose(x, embeddings["pca_1"].to_numpy(), rtol=1e-6)
    assert browser.execute_script("const d = Bokeh.documents[0].get_model_by_name('galaxies').data_source.data;"
                                  "return d.color.every((c, i) => c === d['c_score_combined_score'][i]) && "
                                  "d.color.length") == N_GALAXIES
    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "explorer.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"explorer page {page.stat().st_size / 1e6:.2f} MB, map drawn {seconds:.2f} s after opening")
    # EXPLORER_SCREENSHOT=docs/explorer_screenshot.png: also save the README's screenshot, from runs/demo when
    # it has a page, else from this tiny run (tests never write into the repository unless asked)
    target = os.environ.get("EXPLORER_SCREENSHOT")
    if target:
        demo = ROOT / "runs" / "demo" / runfiles.EXPLORER_HTML
        if demo.exists():
            open_page(browser, demo)
            browser.execute_script("explorer.select(0)")
        browser.save_screenshot(str(ROOT / target))
        print(f"README screenshot {target} from {demo if demo.exists() else page}")


def test_a_subset_page_holds_max_galaxies_and_names_the_neighbours_not_drawn(explored_run, tmp_path):
    out = tmp_path / "subset.html"
    assert explore.main(["--run", str(explored_run), "--max-galaxies", "6", "--outliers", "2", "--output", str(out), "--quiet"]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["n_on_page"] == 6            # in total: the drawn galaxies' neighbours are not added
    page = out.read_text()
    embedded = json.loads(page.split('id="explorer-neighbours">')[1].split("</script>")[0])
    datalist = page.split('<datalist id="galaxy-names">')[1].split("</datalist>")[0]
    page_names = re.findall(r'<option value="([^"]+)">', datalist)       # the galaxies drawn, in page order
    names = pd.read_csv(explored_run / runfiles.LATENT_NAMES, dtype={"name": str})["name"].tolist()
    mu = np.load(explored_run / runfiles.LATENT_MU)
    rows, _ = nearest(build_index(mu), mu, mu, 10, exclude=np.arange(len(mu)))
    assert len(page_names) == 6 and len(embedded["rows"]) == 6
    outliers = pd.read_csv(explored_run / runfiles.OUTLIER_SCORES_CSV, dtype={"name": str}).sort_values("rank")
    assert set(outliers["name"].head(2)) <= set(page_names)      # the listed outliers are among the drawn
    for i, name in enumerate(page_names):
        # every gallery still holds the galaxy's 10 nearest among all 48: drawn ones by page row, the others named
        shown = [page_names[r] if r >= 0 else embedded["off"][f"{i}:{j}"] for j, r in enumerate(embedded["rows"][i])]
        assert shown == [names[r] for r in rows[names.index(name)]]
    assert embedded["off"], "with 6 of 48 drawn, some neighbours must be off the page"


def test_with_an_adapted_model_the_neighbours_are_decals_6s_and_a_changed_model_is_refused(explored_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(explored_run, run, ignore=shutil.ignore_patterns("explorer", "similarity"))
    shutil.copy(run / runfiles.BEST_CHECKPOINT, run / runfiles.TRANSFER_ADAPTED)   # stands in for transfer/evaluate.py
    provenance.record(run, [runfiles.TRANSFER_ADAPTED], [provenance.Input.file(run / runfiles.BEST_CHECKPOINT)],
                      "transfer/evaluate.py")
    names = pd.read_csv(run / runfiles.LATENT_NAMES, dtype={"name": str})["name"].tolist()
    expected = decals_6_neighbours(run, names[11])        # --model auto: adapted; writes its latent cache
    assert explore.main(["--run", str(run), "--quiet"]) == 0
    record = json.loads((run / runfiles.EXPLORER_CONFIG_JSON).read_text())
    page = (run / runfiles.EXPLORER_HTML).read_text()
    embedded = json.loads(page.split('id="explorer-neighbours">')[1].split("</script>")[0])
    assert record["model"] == "adapted" and [names[r] for r in embedded["rows"][11]] == expected
    with open(run / runfiles.TRANSFER_ADAPTED, "ab") as handle:    # the adapted model changes after decals_6 ran
        handle.write(b"\0")
    capsys.readouterr()
    assert explore.main(["--run", str(run), "--quiet"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "adapted.pt: changed after transfer/evaluate.py wrote it" in error
    # re-made by its stage (recorded again): decals_6's latent cache is now the stale file
    provenance.record(run, [runfiles.TRANSFER_ADAPTED], [provenance.Input.file(run / runfiles.BEST_CHECKPOINT)],
                      "transfer/evaluate.py")
    assert explore.main(["--run", str(run), "--quiet"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "latents_adapted.npy" in error and "analysis/decals_6.py" in error


def test_page_links_the_executed_notebooks(explored_run):
    from VAE_model.notebooks import NOTEBOOKS

    page = (explored_run / runfiles.EXPLORER_HTML).read_text()
    for notebook in NOTEBOOKS:
        assert f'href="../{notebook.html}"' in page and f'href="../{notebook.executed}"' in page
