"""The browser demo (web/): onnxruntime-web in headless Chromium agrees with ONNX Runtime.

The page is served from 127.0.0.1 (onnxruntime-web's wasm files come from web/node_modules,
no CDN) and driven by ``tests/web/drive.mjs`` with playwright-core and Debian's Chromium: it
clicks every sample button, feeds a known pattern through the page's API and draws a "7"
with the mouse, reading the 8x8 input and the probabilities the page shows each time.  The
same inputs go through ONNX Runtime in Python and the numbers must match.

Needs node, /usr/bin/chromium and ``npm ci`` in web/ (``scripts/setup_web.sh`` installs
them).  Set ``PYTENSOR_ONNX_UPDATE_SCREENSHOT=1`` to write docs/img/web-demo.png.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "img" / "web-demo.png"


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
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def page_results(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    update = os.environ.get("PYTENSOR_ONNX_UPDATE_SCREENSHOT") == "1"
    screenshot = SCREENSHOT if update else tmp_path_factory.mktemp("web") / "web-demo.png"
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "web" / "drive.mjs"), server, str(screenshot)],
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
