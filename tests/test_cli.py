"""The ``pytensor-onnx`` command line: inspect, check, run, export; help and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.scan.utils import until

from pytensor_onnx import export_onnx, runtimes
from pytensor_onnx.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests.test_untrusted import loop_model

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("inspect", "check", "run", "export")


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    x = pt.matrix("x", shape=(None, 3))
    k = pt.scalar("k", dtype="int64")
    w = pytensor.shared(np.linspace(-1, 1, 6).reshape(3, 2), name="w")
    y = pt.tanh(x @ w) * k
    y.name = "y"
    total = y.sum()
    total.name = "total"
    path = tmp_path / "model.onnx"
    export_onnx([x, k], [y, total], path)
    return path


def test_console_script_is_declared() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["pytensor-onnx"] == "pytensor_onnx.cli:main"


def test_help_documents_every_subcommand() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytensor_onnx.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: pytensor-onnx")
    for command in COMMANDS:
        assert f"    {command}" in result.stdout
    assert "exit status" in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: pytensor-onnx {command}")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == EXIT_USAGE
    assert "required" in capsys.readouterr().err


def test_inspect(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(model_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "Inputs (2):" in out and "x_dim0" in out
    assert "MatMul" in out and "Tanh" in out
    assert "Initializers: 1, 48 B" in out


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("inspect", "check", "run"):
        assert main([command, str(tmp_path / "nope.onnx")]) == EXIT_USAGE
        captured = capsys.readouterr()
        assert "no such file" in captured.err and captured.out == ""


def test_check_passes_a_good_model(model_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(model_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "onnx checker (full_check): ok" in out
    assert "strict shape inference: ok" in out
    assert "onnxruntime load: ok" in out


def test_check_in_other_runtimes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not runtimes.is_available("tract"):
        pytest.skip("tract is not installed")
    x0 = pt.scalar("x0")
    # A while loop (until) is an ONNX Loop, which tract lacks; a fixed count would be a Scan.
    xs = pytensor.scan(
        lambda prev: (prev * 0.5 + 1.0, until(prev > 100.0)),
        outputs_info=[x0],
        n_steps=4,
        return_updates=False,
    )
    path = tmp_path / "loop.onnx"
    export_onnx([x0], [xs], path)
    assert main(["check", str(path), "--runtime", "ort", "--runtime", "tract"]) == EXIT_FAILED
    out = capsys.readouterr().out
    assert "  onnxruntime: ok (max rel err 0)" in out
    assert "  tract: FAILED to run: " in out and "Loop" in out
    assert out.endswith("model has problems\n")
    assert main(["check", str(path), "--runtime", "nope"]) == EXIT_USAGE
    assert "unknown runtime 'nope'" in capsys.readouterr().err


def test_check_fails_a_broken_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Add(float, int64) is invalid: the checker and shape inference reject it
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["a", "b"], ["c"])],
        "broken",
        [
            onnx.helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [2]),
            onnx.helper.make_tensor_value_info("b", onnx.TensorProto.INT64, [2]),
        ],
        [onnx.helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [2])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    model.ir_version = 10
    path = tmp_path / "broken.onnx"
    onnx.save(model, path)
    assert main(["check", str(path)]) == EXIT_FAILED
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and "model has problems" in captured.out
    assert "strict shape inference failed" in captured.err


def test_run_prints_and_saves_outputs(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.arange(6.0).reshape(2, 3) / 10
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "k.npy", np.array(3, dtype=np.int64))
    out_dir = tmp_path / "out"
    status = main(
        [
            "run",
            str(model_path),
            "--input",
            f"x={tmp_path / 'x.npy'}",
            "-i",
            f"k={tmp_path / 'k.npy'}",
            "--output-dir",
            str(out_dir),
        ]
    )
    assert status == EXIT_OK
    out = capsys.readouterr().out
    assert "y: float64 [2, 2]" in out and "total: float64 []" in out
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    want_y, want_total = session.run(None, {"x": x, "k": np.array(3, dtype=np.int64)})
    np.testing.assert_array_equal(np.load(out_dir / "y.npy"), want_y)
    np.testing.assert_array_equal(np.load(out_dir / "total.npy"), want_total)
    assert f"{want_total:.8f}".rstrip("0") in out


def test_run_input_errors(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    assert main(["run", str(model_path), "--input", f"x={tmp_path / 'x.npy'}"]) == EXIT_USAGE
    assert "missing --input for k" in capsys.readouterr().err
    assert main(["run", str(model_path), "--input", "x"]) == EXIT_USAGE
    assert "expected NAME=FILE.npy" in capsys.readouterr().err
    args = [
        "run",
        str(model_path),
        "-i",
        f"x={tmp_path / 'x.npy'}",
        "-i",
        f"z={tmp_path / 'x.npy'}",
    ]
    assert main(args) == EXIT_USAGE
    assert "the model has no input z" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((2, 3), np.float32), "input x: the model takes float64, the file holds float32"),
        (np.zeros((2, 4)), "input x: the model takes shape (?, 3), the file holds (2, 4)"),
    ],
    ids=["dtype", "shape"],
)
def test_run_names_the_input_that_does_not_fit(
    model_path: Path,
    tmp_path: Path,
    x: np.ndarray,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "k.npy", np.array(1, dtype=np.int64))
    args = [
        "run",
        str(model_path),
        "-i",
        f"x={tmp_path / 'x.npy'}",
        "-i",
        f"k={tmp_path / 'k.npy'}",
    ]
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "\x1b[" not in err  # no coloured ONNX Runtime log line


def test_run_refuses_inputs_that_are_not_npy_files(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "x.txt").write_text("1 2 3\n")
    assert main(["run", str(model_path), "-i", f"x={tmp_path / 'x.txt'}"]) == EXIT_USAGE
    assert "is not a .npy file (write it with np.save)" in capsys.readouterr().err


_MODULE = textwrap.dedent(
    """
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    x = pt.vector("x", shape=(4,))
    w = pytensor.shared(np.array([1.0, 2.0, 3.0, 4.0]), name="w")
    y = pt.exp(x) * w
    compiled = pytensor.function([x], y)
    graph = ([x], [y, y.sum()])
    not_a_graph = 42
    m = pt.matrix("m")
    p = pytensor.shared(np.ones((4, 2)), name="p")
    projection = ([m], [m @ p])
    rows_of_four = ([m], [m.reshape((-1, 4)) @ p])
    draws = ([], [pt.random.normal(size=5, rng=pytensor.shared(np.random.default_rng(0)))])
    """
)


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "cli_demo_module.py").write_text(_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "cli_demo_module", raising=False)
    return tmp_path


def test_export_compiled_function(module_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = module_dir / "f.onnx"
    assert main(["export", "cli_demo_module:compiled", str(out), "--verify"]) == EXIT_OK
    assert "wrote" in capsys.readouterr().out
    model = onnx.load(out)
    assert [i.name for i in model.graph.input] == ["x"]
    (y,) = ort.InferenceSession(out, providers=["CPUExecutionProvider"]).run(
        None, {"x": np.zeros(4)}
    )
    np.testing.assert_allclose(y, [1.0, 2.0, 3.0, 4.0])


def test_export_no_portable_gives_the_same_draws_with_plain_shifts(module_dir: Path) -> None:
    sizes, draws = [], []
    for extra in ([], ["--no-portable"]):
        out = str(module_dir / f"draws{len(extra)}.onnx")
        assert main(["export", "cli_demo_module:draws", out, *extra]) == EXIT_OK
        sizes.append(len(onnx.load(out).graph.node))
        session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
        draws.append(session.run(None, {"seed": np.array(3, np.int64)})[0])
    assert sizes[1] < sizes[0]
    np.testing.assert_array_equal(draws[0], draws[1])


def test_export_pair_from_file_with_options(
    module_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = module_dir / "g.onnx"
    args = [
        "export",
        str(module_dir / "cli_demo_module.py") + ":graph",
        str(out),
        "--float32",
        "--opset",
        "20",
        "--external-data",
        "always",
        "--external-data-threshold",
        "0",
        "--provenance",
        "--ir-version",
        "10",
    ]
    assert main(args) == EXIT_OK
    model = onnx.load(out, load_external_data=False)
    assert model.opset_import[0].version == 20
    assert model.ir_version == 10
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert len(model.graph.output) == 2
    assert all(node.metadata_props for node in model.graph.node)
    (data,) = module_dir.glob("g.onnx.*.data")
    assert data.stat().st_size == 16  # w, as float32
    (w,) = model.graph.initializer
    assert w.data_location == onnx.TensorProto.EXTERNAL


def test_export_errors(module_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(module_dir / "h.onnx")
    assert main(["export", "cli_demo_module:not_a_graph", out]) == EXIT_USAGE
    assert "expected a compiled pytensor.function" in capsys.readouterr().err
    assert main(["export", "cli_demo_module:missing", out]) == EXIT_USAGE
    assert "no attribute 'missing'" in capsys.readouterr().err
    assert main(["export", "no_such_module_xyz:f", out]) == EXIT_USAGE
    assert "cannot import" in capsys.readouterr().err
    assert main(["export", "cli_demo_module", out]) == EXIT_USAGE
    assert "MODULE:ATTRIBUTE" in capsys.readouterr().err
    assert main(["export", "cli_demo_module:graph", out, "--opset", "3"]) == EXIT_FAILED
    assert "opset 3 is not supported" in capsys.readouterr().err
    assert not Path(out).exists()


def _identity_model(path: Path, output_names: list[str]) -> None:
    """A hand-made model whose outputs carry untrusted names."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["a"], [name]) for name in output_names],
        "untrusted",
        [onnx.helper.make_tensor_value_info("a", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [2]) for n in output_names],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, path)


def test_run_never_writes_outside_the_output_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["../../escaped", str(tmp_path / "absolute"), "..", "\x1b[31mred"]
    _identity_model(tmp_path / "m.onnx", names)
    np.save(tmp_path / "a.npy", np.ones(2, dtype=np.float32))
    out_dir = tmp_path / "deep" / "out"
    status = main(
        ["run", str(tmp_path / "m.onnx"), "-i", f"a={tmp_path / 'a.npy'}", "-o", str(out_dir)]
    )
    assert status == EXIT_OK
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.npy") if p.name != "a.npy")
    assert all(p.parent == Path("deep/out") for p in written), written
    assert len(written) == len(names)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[31mred" in out


def test_run_refuses_outputs_saved_to_one_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _identity_model(tmp_path / "m.onnx", ["a/b", "a_b"])
    np.save(tmp_path / "a.npy", np.ones(2, dtype=np.float32))
    status = main(
        ["run", str(tmp_path / "m.onnx"), "-i", f"a={tmp_path / 'a.npy'}", "-o", str(tmp_path)]
    )
    assert status == EXIT_USAGE
    assert "same file name" in capsys.readouterr().err


def test_inspect_escapes_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _identity_model(tmp_path / "m.onnx", ["\x1b]0;title\x07out"])
    assert main(["inspect", str(tmp_path / "m.onnx")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;title\\x07out" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"hello, this is text\n", "not an ONNX model"),
        (None, "is a directory"),
    ],
)
def test_files_that_are_not_models_are_usage_errors(
    tmp_path: Path, content: bytes | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.onnx"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    for command in ("inspect", "check", "run"):
        assert main([command, str(path)]) == EXIT_USAGE
        captured = capsys.readouterr()
        assert message in captured.err and captured.out == ""


def test_run_timeout_stops_an_endless_loop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    onnx.save(loop_model(2**62), tmp_path / "loop.onnx")
    np.save(tmp_path / "a.npy", np.zeros(1, np.float32))
    args = ["run", str(tmp_path / "loop.onnx"), "-i", f"a={tmp_path / 'a.npy'}", "--timeout", "0.5"]
    assert main(args) == EXIT_FAILED
    assert "onnxruntime: the run was stopped after 0.5 s (timeout)" in capsys.readouterr().err


def test_python_dash_m_runs_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytensor_onnx", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "inspect" in result.stdout


def test_a_closed_pipe_ends_quietly(model_path: Path) -> None:
    # `pytensor-onnx inspect model.onnx | head -0`: the reader is gone before the first write.
    reader = subprocess.Popen([sys.executable, "-c", "pass"], stdin=subprocess.PIPE)
    reader.wait()
    writer = subprocess.run(
        [sys.executable, "-m", "pytensor_onnx", "inspect", str(model_path)],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert reader.stdin is not None
    reader.stdin.close()
    assert "BrokenPipeError" not in writer.stderr and "Traceback" not in writer.stderr


def test_license_is_an_spdx_expression_with_its_file() -> None:
    # The TOML-table form is deprecated by setuptools (removal announced for 2027-02).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause"
    assert project["license-files"] == ["LICENSE"]
    assert "BSD 3-Clause License" in (ROOT / "LICENSE").read_text()


def test_export_verify_with_given_inputs(
    module_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # m @ p with p of shape (4, 2): m is exported with 4 columns, so random inputs fit.
    out = str(module_dir / "p.onnx")
    assert main(["export", "cli_demo_module:projection", out, "--verify"]) == EXIT_OK
    # m reshaped to rows of 4: random inputs with unknown dims of length 3 cannot fit.
    assert main(["export", "cli_demo_module:rows_of_four", out, "--verify"]) == EXIT_FAILED
    capsys.readouterr()
    np.save(tmp_path / "m.npy", np.ones((5, 4)))
    args = [
        "export",
        "cli_demo_module:rows_of_four",
        out,
        "--verify-input",
        f"m={tmp_path / 'm.npy'}",
    ]
    assert main(args) == EXIT_OK
    assert "wrote" in capsys.readouterr().out and Path(out).exists()


def test_export_shows_where_the_users_module_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "broken_model.py"
    script.write_text("import numpy as np\n\nvalue = 1\nweights = np.ones(3) @ np.ones(4)\n")
    assert main(["export", f"{script}:weights", str(tmp_path / "m.onnx")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "importing" in err and "ValueError" in err
    assert f"{script}:4 in <module>: weights = np.ones(3) @ np.ones(4)" in err
