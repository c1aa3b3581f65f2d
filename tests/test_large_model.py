"""Models over the 2 GiB protobuf limit: external data, bounded memory, ONNX Runtime loads them.

The weights are large ``shared`` zeros (``np.zeros`` memory is only committed when written),
so the export's peak memory shows whether it copies the weights: it must stay far below the
2.25 GiB they hold.  Each step runs in a fresh subprocess to measure its own peak RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_onnx import VerificationError, export_onnx
from pytensor_onnx.storage import external_data_name
from tests.test_verify import graph_with_converter_bug

N_WEIGHTS = 9
WEIGHT_SHAPE = (8192, 8192)  # 256 MiB of float32 each, 2.25 GiB in all
GIB = 2**30

_EXPORT = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np, pytensor, pytensor.tensor as pt
    from pytensor_onnx import VerificationError, export_onnx

    path, n, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    weights = []
    for i in range(n):
        array = np.zeros((rows, cols), dtype=np.float32)
        array[0, :3] = i + 1  # touches one page: known values ORT must read back
        weights.append(pytensor.shared(array, name=f"w{i}", borrow=True))
    x = pt.vector("x", dtype="float32", shape=(3,))
    y = x + sum(w[0, :3] for w in weights)
    try:
        export_onnx([x], [y], path, external_data=False)
    except ValueError as err:
        single_file_error = str(err)
    else:
        single_file_error = ""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    proto = export_onnx([x], [y], path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "rss_before_export_kib": before,
        "peak_rss_kib": peak,
        "proto_bytes": proto.ByteSize(),
        "single_file_error": single_file_error,
    }))
    """
)

_RUN = textwrap.dedent(
    """
    import json, sys
    import numpy as np, onnx, onnxruntime as ort
    onnx.checker.check_model(sys.argv[1], full_check=True)
    session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.array([1.0, 2.0, 3.0], dtype=np.float32)})
    print(json.dumps({"y": y.tolist()}))
    """
)


def _run_child(code: str, *args: object) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_model_over_2gib_goes_to_external_data_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.onnx"
    try:
        _check_large_export(path)
    finally:  # pytest keeps recent temporary directories: do not leave 2.25 GiB behind
        for file in tmp_path.iterdir():
            file.unlink()


def _check_large_export(path: Path) -> None:
    tmp_path = path.parent
    stats = _run_child(_EXPORT, path, N_WEIGHTS, *WEIGHT_SHAPE)

    assert "over the 2 GiB protobuf limit" in stats["single_file_error"]
    data = tmp_path / external_data_name(path)
    weight_bytes = N_WEIGHTS * WEIGHT_SHAPE[0] * WEIGHT_SHAPE[1] * 4
    assert data.stat().st_size >= weight_bytes > 2 * GIB
    assert path.stat().st_size < 1_000_000
    assert stats["proto_bytes"] < 1_000_000  # the returned proto references the data file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]
    # Writing streams tensor by tensor: far less than the 2.25 GiB of weights is resident.
    export_growth = (stats["peak_rss_kib"] - stats["rss_before_export_kib"]) * 1024
    assert export_growth < 0.75 * GIB, f"export grew RSS by {export_growth / GIB:.2f} GiB"

    result = _run_child(_RUN, path)
    expected = np.array([1.0, 2.0, 3.0]) + sum(range(1, N_WEIGHTS + 1))
    np.testing.assert_array_equal(result["y"], expected)


def test_external_data_threshold_and_forced_single_file(tmp_path: Path) -> None:
    big = pytensor.shared(np.arange(1000, dtype=np.float64), name="big")
    small = pytensor.shared(np.arange(4, dtype=np.float64), name="small")
    x = pt.vector("x", shape=(4,))
    y = x + big[:4] * small

    single = tmp_path / "single.onnx"
    export_onnx([x], [y], single)  # small model: one file by default
    assert sorted(p.name for p in tmp_path.iterdir()) == ["single.onnx"]

    split = tmp_path / "split.onnx"
    proto = export_onnx([x], [y], split, external_data=True, external_data_threshold=100)
    assert (tmp_path / "split.onnx.data").stat().st_size == 8000
    locations = {t.name: {e.key: e.value for e in t.external_data} for t in proto.graph.initializer}
    assert locations["big"]["location"] == "split.onnx.data"
    assert locations["small"] == {}  # 32 bytes, under the threshold: inline
    import onnxruntime as ort

    feeds = {"x": np.ones(4)}
    want = ort.InferenceSession(single, providers=["CPUExecutionProvider"]).run(None, feeds)
    got = ort.InferenceSession(split, providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_array_equal(got[0], want[0])
    # no temporaries left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "single.onnx",
        "split.onnx",
        "split.onnx.data",
    ]


def test_external_data_needs_a_path() -> None:
    x = pt.vector("x", shape=(2,))
    with pytest.raises(ValueError, match="needs a path"):
        export_onnx([x], [x * 2], external_data=True)


def test_failed_external_data_export_leaves_nothing(tmp_path: Path) -> None:
    inputs, outputs = graph_with_converter_bug(bug=1e-3)
    with pytest.raises(VerificationError):
        # fails after both files were written to the temporary directory
        export_onnx(
            inputs,
            outputs,
            tmp_path / "m.onnx",
            external_data=True,
            external_data_threshold=16,
            verify=[np.ones((2, 3))],
        )
    assert list(tmp_path.iterdir()) == []
