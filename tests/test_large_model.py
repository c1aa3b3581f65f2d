"""Models over the 2 GiB protobuf limit: external data, bounded memory, ONNX Runtime loads them.

The weights are large ``shared`` zeros (``np.zeros`` memory is only committed when written),
so the export's peak memory shows whether it copies the weights: it must stay far below the
2.25 GiB they hold.  Each step runs in a fresh subprocess to measure its own peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
import pytest

from pytensor_onnx import VerificationError, export_onnx
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
    (data,) = tmp_path.glob("big.onnx.*.data")
    weight_bytes = N_WEIGHTS * WEIGHT_SHAPE[0] * WEIGHT_SHAPE[1] * 4
    assert data.stat().st_size >= weight_bytes > 2 * GIB
    assert path.stat().st_size < 1_000_000
    assert stats["proto_bytes"] < 1_000_000  # the returned proto references the data file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", data.name]
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
    (data,) = tmp_path.glob("split.onnx.*.data")
    assert data.stat().st_size == 8000
    locations = {t.name: {e.key: e.value for e in t.external_data} for t in proto.graph.initializer}
    assert locations["big"]["location"] == data.name
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
        data.name,
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


def _split_export(path: Path, scale: float, **kwargs) -> None:
    big = pytensor.shared(np.arange(1000, dtype=np.float64) * scale, name="big")
    x = pt.vector("x", shape=(4,))
    export_onnx([x], [x + big[:4]], path, external_data=True, **kwargs)


def _run_split(path: Path) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.zeros(4)})[0]


def test_external_data_rewrite_replaces_the_pair(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    _split_export(path, 1.0)
    first = {p.name for p in tmp_path.iterdir()}
    _split_export(path, 2.0)
    second = {p.name for p in tmp_path.iterdir()}
    assert len(first) == len(second) == 2 and first != second  # the old data file is gone
    np.testing.assert_array_equal(_run_split(path), [0.0, 2.0, 4.0, 6.0])
    _split_export(path, 2.0)  # same weights: same files, same bytes
    assert {p.name for p in tmp_path.iterdir()} == second


@pytest.mark.parametrize("failing_step", ["data", "model", "verify"])
def test_a_failed_external_data_write_keeps_the_old_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_step: str
) -> None:
    import pytensor_onnx.storage as storage

    path = tmp_path / "m.onnx"
    _split_export(path, 1.0)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_replace = os.replace

    def replace(src, dst):
        if (failing_step == "data") == str(dst).endswith(".data"):
            raise OSError(f"injected failure renaming {dst}")
        return real_replace(src, dst)

    def failing_verification(*args, **kwargs):
        raise RuntimeError("injected verification failure")

    kwargs = {}
    if failing_step == "verify":
        kwargs["verify"] = [np.zeros(4)]
        verify_module = sys.modules[
            "pytensor_onnx.verify"
        ]  # the package exports a function of that name
        monkeypatch.setattr(verify_module, "verify_export", failing_verification)
    else:
        monkeypatch.setattr(storage.os, "replace", replace)
    with pytest.raises((OSError, RuntimeError), match="injected"):
        _split_export(path, 2.0, **kwargs)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    np.testing.assert_array_equal(_run_split(path), [0.0, 1.0, 2.0, 3.0])


def test_external_data_outside_the_model_directory_is_refused(tmp_path: Path) -> None:
    from pytensor_onnx.storage import check_external_data_locations

    path = tmp_path / "m.onnx"
    _split_export(path, 1.0)
    model = onnx.load(path, load_external_data=False)
    check_external_data_locations(model)
    for location in ["../../etc/passwd", "/etc/passwd", "sub/../../x.data"]:
        for entry in model.graph.initializer[0].external_data:
            if entry.key == "location":
                entry.value = location
        with pytest.raises(ValueError, match="outside the model's directory"):
            check_external_data_locations(model)
