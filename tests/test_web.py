"""The browser demo (web/): onnxruntime-web in headless Chromium agrees with ONNX Runtime.

The pages are served from 127.0.0.1 (onnxruntime-web's wasm files come from web/node_modules,
no CDN) and driven with playwright-core and Debian's Chromium (``tests/web/browser.mjs``).

- ``tests/web/drive.mjs`` drives the digits page: it clicks every sample button, feeds a known
  pattern through the page's API and draws a "7" with the mouse, reading the 8x8 input and the
  probabilities the page shows each time.  The same inputs go through ONNX Runtime in Python
  and the numbers must match.
- ``tests/web/drive_predictive.mjs`` drives the posterior-predictive page: its default grid, a
  grid and seed typed into its form, its "New seed" button and its API.  The page's draws must
  be ONNX Runtime's for the same seed and grid, its quantiles NumPy's, and (with PyMC) its 5, 50
  and 95 % quantiles those of ``pm.sample_posterior_predictive`` within Monte Carlo error.

Needs node, /usr/bin/chromium and ``npm ci`` in web/ (``scripts/setup_web.sh`` installs
them).  Set ``PYTENSOR_ONNX_UPDATE_SCREENSHOT=1`` to write docs/img/web-demo.png and
docs/img/web-predictive.png.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from statistics import NormalDist

import numpy as np
import onnx
import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")


def _missing() -> str:
    if shutil.which("node") is None:
        return "node is not installed (run scripts/setup_web.sh)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (run scripts/setup_web.sh)"
    for package in ("onnxruntime-web", "playwright-core"):
        if not (WEB / "node_modules" / package / "package.json").exists():
            return f"web/node_modules/{package} is missing (run scripts/setup_web.sh)"
    return ""


pytestmark = pytest.mark.skipif(bool(_missing()), reason=_missing() or "ok")


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".js": "text/javascript",
    }

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    handler = functools.partial(_Handler, directory=str(WEB))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _drive(script: str, url: str, screenshot: Path) -> dict:
    """Run ``tests/web/<script>`` on ``url`` and return the JSON object it prints last."""
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "web" / script), url, str(screenshot)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["screenshot"] = screenshot
    return data


def _screenshot(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("PYTENSOR_ONNX_UPDATE_SCREENSHOT") == "1":
        return ROOT / "docs" / "img" / name
    return tmp_path_factory.mktemp("web") / name


@pytest.fixture(scope="module")
def page_results(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _drive("drive.mjs", server + "index.html", _screenshot("web-demo.png", tmp_path_factory))


def test_page_loads_without_errors(page_results: dict) -> None:
    assert page_results["errors"] == []
    png = page_results["screenshot"].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_page_numbers_match_onnxruntime(page_results: dict) -> None:
    session = ort.InferenceSession(WEB / "model.onnx", providers=["CPUExecutionProvider"])
    cases = page_results["cases"]
    assert [c["source"] for c in cases] == [
        "blank",
        *(f"sample {d}" for d in range(10)),
        "pattern",
        "drawn 7",
    ]
    for case in cases:
        pixels = np.asarray(case["pixels"], dtype=np.float32).reshape(1, 64)
        (expected,) = session.run(None, {"pixels": pixels})
        shown = np.asarray(case["probabilities"])
        # float32 in WebAssembly vs native kernels; the page shows 9 significant digits.
        np.testing.assert_allclose(shown, expected[0], rtol=2e-5, atol=1e-7, err_msg=case["source"])
        assert case["predicted"] == int(expected[0].argmax()), case["source"]
        assert abs(shown.sum() - 1) < 1e-5


def test_page_inputs_are_what_it_was_given(page_results: dict) -> None:
    cases = {c["source"]: c for c in page_results["cases"]}
    samples = json.loads((WEB / "samples.json").read_text())
    for sample in samples:
        np.testing.assert_array_equal(
            cases[f"sample {sample['label']}"]["pixels"], sample["pixels"]
        )
    pattern = np.array([(i * 7) % 17 / 16 for i in range(64)], dtype=np.float32)
    np.testing.assert_array_equal(cases["pattern"]["pixels"], pattern)
    assert not any(cases["blank"]["pixels"])
    # The drawn 7 is downsampled to 8x8 ink counts in sixteenths, ink along its top row.
    drawn = np.asarray(cases["drawn 7"]["pixels"]).reshape(8, 8)
    np.testing.assert_array_equal(drawn * 16, np.round(drawn * 16))
    assert drawn[0].sum() > 4 and drawn[:, 0].sum() < drawn[0].sum()


def test_demo_classifies_samples_and_drawing(page_results: dict) -> None:
    cases = {c["source"]: c for c in page_results["cases"]}
    correct = sum(cases[f"sample {d}"]["predicted"] == d for d in range(10))
    assert correct >= 9
    assert cases["drawn 7"]["predicted"] == 7


def test_model_is_float32_and_loadable_by_onnxruntime_web() -> None:
    model = onnx.load(WEB / "model.onnx")
    assert model.ir_version <= 13  # onnxruntime-web 1.30 reads up to IR version 13
    (pixels,) = model.graph.input
    assert pixels.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in model.graph.initializer)


# ------------------------------------------------------------ posterior-predictive page
@pytest.fixture(scope="module")
def predictive_results(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    screenshot = _screenshot("web-predictive.png", tmp_path_factory)
    data = _drive("drive_predictive.mjs", server + "predictive.html", screenshot)
    data["cases"] = {case["source"]: case for case in data["cases"]}
    return data


def _draws(case: dict) -> np.ndarray:
    return np.asarray(case["draws"]).reshape(case["shape"])


def test_predictive_page_loads_without_errors(predictive_results: dict) -> None:
    assert predictive_results["errors"] == []
    png = predictive_results["screenshot"].read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_predictive_page_uses_the_grid_and_seed_it_was_given(predictive_results: dict) -> None:
    cases = predictive_results["cases"]
    assert list(cases) == ["initial", "form", "new seed", "api"]
    np.testing.assert_allclose(cases["initial"]["x"], np.linspace(-2.0, 12.0, 50), rtol=1e-15)
    np.testing.assert_allclose(cases["form"]["x"], np.linspace(-3.0, 13.0, 9), rtol=1e-15)
    assert cases["api"]["x"] == cases["new seed"]["x"] == cases["form"]["x"]
    assert (cases["initial"]["seed"], cases["form"]["seed"]) == ("0", "7")
    # The form shows the seed it ran (the API run bypasses the form).
    assert all(cases[s]["seedShown"] == cases[s]["seed"] for s in ("initial", "form", "new seed"))
    assert cases["new seed"]["seed"] != "7"
    # One draw per posterior draw (2 chains x 500) at every grid point.
    assert [case["shape"] for case in cases.values()] == [[1000, 50], *[[1000, 9]] * 3]


def test_predictive_draws_match_onnxruntime(predictive_results: dict) -> None:
    cases = predictive_results["cases"]
    session = ort.InferenceSession(WEB / "predictive.onnx", providers=["CPUExecutionProvider"])
    for case in cases.values():
        feeds = {
            "seed": np.array(int(case["seed"]), np.int64),
            "x": np.asarray(case["x"], np.float64),
        }
        (expected,) = session.run(None, feeds)
        # Normal draws go through Log and Cos, whose last bits depend on the runtime's libm
        # (an ulp of the noise shows as a relative error where mean + noise is near 0).
        np.testing.assert_allclose(
            _draws(case), expected, rtol=1e-12, atol=1e-12, err_msg=case["source"]
        )
    # The same seed gives the same draws in the page; another seed, other draws.
    assert cases["api"]["draws"] == cases["form"]["draws"]
    assert not np.any(_draws(cases["new seed"]) == _draws(cases["form"]))


def test_predictive_quantiles_are_numpys(predictive_results: dict) -> None:
    for case in predictive_results["cases"].values():
        for q, values in case["quantiles"].items():
            expected = np.quantile(_draws(case), float(q), axis=0)
            np.testing.assert_allclose(values, expected, rtol=1e-13, err_msg=case["source"])


def test_predictive_quantiles_match_pymc(predictive_results: dict) -> None:
    pm = pytest.importorskip("pymc")
    import xarray as xr

    spec = importlib.util.spec_from_file_location("build_predictive", WEB / "build_predictive.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    data = json.loads((WEB / "predictive.json").read_text())
    posterior = xr.Dataset(
        {name: (("chain", "draw"), values) for name, values in data["posterior"].items()}
    )
    model = build.regression(np.asarray(data["x"]), np.asarray(data["y"]))
    for source in ("initial", "form"):
        case = predictive_results["cases"][source]
        x = np.asarray(case["x"], np.float64)
        with model:
            pm.set_data({"x": x})
            expected = pm.sample_posterior_predictive(
                posterior, random_seed=1, progressbar=False, return_inferencedata=False
            )["y"].reshape(-1, len(x))
        for q, values in case["quantiles"].items():
            tolerance = _quantile_tolerance(float(q), expected)
            error = np.abs(np.asarray(values) - np.quantile(expected, float(q), axis=0))
            np.testing.assert_array_less(error, tolerance, err_msg=f"{source}, q={q}")


def _quantile_tolerance(q: float, draws: np.ndarray) -> np.ndarray:
    """Five standard errors of the difference of two q-quantiles of ``len(draws)`` draws each.

    A sample q-quantile of n draws has the standard error sqrt(q (1 - q) / n) / f(x_q), f the
    density at the quantile, here the normal one with the draws' spread.
    """
    n = len(draws)
    density = NormalDist().pdf(NormalDist().inv_cdf(q)) / draws.std(axis=0)
    return 5 * np.sqrt(2) * np.sqrt(q * (1 - q) / n) / density
