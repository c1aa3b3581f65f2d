"""The Open Inference Protocol codec: requests checked against the model, responses encoded."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytensor.tensor as pt
import pytest

from pytensor_onnx import export_onnx
from pytensor_onnx.oip import HEADER_LENGTH, ModelSignature, ProtocolError


@pytest.fixture(scope="module")
def signature() -> ModelSignature:
    x = pt.matrix("x", shape=(None, 3))
    n = pt.lvector("n")
    flag = pt.scalar("flag", dtype="bool")
    out = pt.switch(flag, x.sum(axis=1), -x.sum(axis=1)) + n
    model = export_onnx([x, n, flag], [out, n * 2])
    return ModelSignature.from_model(model, "m")


def _body(inputs: list[dict], **extra: object) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


X = {"name": "x", "datatype": "FP64", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}
N = {"name": "n", "datatype": "INT64", "shape": [2], "data": [7, 8]}
FLAG = {"name": "flag", "datatype": "BOOL", "shape": [], "data": [True]}


def test_metadata_names_inputs_outputs_dtypes_and_shapes(signature: ModelSignature) -> None:
    meta = signature.metadata()
    assert meta["name"] == "m"
    assert meta["inputs"] == [
        {"name": "x", "datatype": "FP64", "shape": [-1, 3]},
        {"name": "n", "datatype": "INT64", "shape": [-1]},
        {"name": "flag", "datatype": "BOOL", "shape": []},
    ]
    assert [o["datatype"] for o in meta["outputs"]] == ["FP64", "INT64"]


def test_batched_inputs_have_a_symbolic_leading_dim(signature: ModelSignature) -> None:
    assert signature.batched_inputs == {"x", "n"}


def test_decode_json_flat_and_nested(signature: ModelSignature) -> None:
    nested = {**X, "data": [[1, 2, 3], [4, 5, 6]]}
    for x in (X, nested):
        request = signature.decode(_body([x, N, FLAG], id="r1"))
        assert request.id == "r1"
        np.testing.assert_array_equal(request.feeds["x"], [[1, 2, 3], [4, 5, 6]])
        assert request.feeds["x"].dtype == np.float64
        assert request.feeds["n"].dtype == np.int64
        assert request.feeds["flag"].shape == ()
        assert request.outputs == [o.name for o in signature.outputs]
        assert request.binary_outputs == set()


def test_decode_binary_tensor_data(signature: ModelSignature) -> None:
    x = np.arange(6.0).reshape(2, 3)
    n = np.array([-1, 2**40], dtype=np.int64)
    head = _body(
        [
            {
                "name": "x",
                "datatype": "FP64",
                "shape": [2, 3],
                "parameters": {"binary_data_size": x.nbytes},
            },
            {
                "name": "n",
                "datatype": "INT64",
                "shape": [2],
                "parameters": {"binary_data_size": n.nbytes},
            },
            FLAG,
        ],
        outputs=[{"name": signature.outputs[1].name, "parameters": {"binary_data": True}}],
    )
    request = signature.decode(head + x.tobytes() + n.tobytes(), len(head))
    np.testing.assert_array_equal(request.feeds["x"], x)
    np.testing.assert_array_equal(request.feeds["n"], n)
    assert request.outputs == [signature.outputs[1].name]
    assert request.binary_outputs == {signature.outputs[1].name}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([X, N], "missing input(s) 'flag'"),
        ([X, N, FLAG, {**FLAG, "name": "extra"}], "no input 'extra'"),
        ([X, N, FLAG, FLAG], "'flag' is given twice"),
        ([{**X, "datatype": "FP32"}, N, FLAG], "the model takes FP64, the request has 'FP32'"),
        ([{**X, "datatype": "BYTES"}, N, FLAG], "not a numeric protocol datatype"),
        ([{**X, "shape": [3, 2]}, N, FLAG], "the model takes shape [-1, 3], got [3, 2]"),
        ([{**X, "shape": [2, 3, 1]}, N, FLAG], "the model takes shape [-1, 3]"),
        ([{**X, "shape": [2, -3]}, N, FLAG], "list of non-negative ints"),
        ([{**X, "data": [1, 2, 3]}, N, FLAG], "holds 3 values, shape [2, 3] needs 6"),
        ([{**X, "data": [[1, 2, 3], [4, 5]]}, N, FLAG], "'data' is not FP64"),
        ([{**X, "data": ["a"] * 6}, N, FLAG], "'data' is not FP64"),
        ([X, {**N, "data": [1.5, 2]}, FLAG], "1.5 is not a INT64 value"),
        ([X, {**N, "data": [2**63, 1]}, FLAG], "'data' is not INT64"),
        ([X, N, {**FLAG, "data": [2]}], "2 is not a BOOL value"),
        ([{k: v for k, v in X.items() if k != "data"}, N, FLAG], "no 'data'"),
        ([{**X, "name": None}, N, FLAG], "needs a 'name'"),
    ],
)
def test_decode_names_what_does_not_fit(
    signature: ModelSignature, inputs: list[dict], message: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        signature.decode(_body(inputs))
    assert info.value.status == 400
    assert message in info.value.message


@pytest.mark.parametrize(
    ("body", "header", "message"),
    [
        (b"{bad", None, "not valid JSON"),
        (b"\xff\xfe", None, "not valid JSON"),
        (b"[1, 2]", None, "must be a JSON object"),
        (b"{}", None, "needs 'inputs'"),
        (b'{"inputs": [1]}', None, "needs 'inputs'"),
        (b'{"inputs": [], "id": 3}', None, "'id' must be a string"),
        (b'{"inputs": []}', 99, "does not fit the body"),
        (b'{"inputs": []}xyz', 14, "3 bytes of binary data belong to no input"),
    ],
)
def test_decode_refuses_malformed_requests(
    signature: ModelSignature, body: bytes, header: int | None, message: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        signature.decode(body, header)
    assert message in info.value.message


def test_decode_refuses_short_or_mismatched_binary_data(signature: ModelSignature) -> None:
    def body(size: int, payload: bytes) -> tuple[bytes, int]:
        head = _body(
            [
                {
                    "name": "x",
                    "datatype": "FP64",
                    "shape": [2, 3],
                    "parameters": {"binary_data_size": size},
                },
                N,
                FLAG,
            ]
        )
        return head + payload, len(head)

    with pytest.raises(ProtocolError, match="the shape needs 48 bytes"):
        signature.decode(*body(40, bytes(40)))
    with pytest.raises(ProtocolError, match="ends inside its binary data"):
        signature.decode(*body(48, bytes(40)))


def test_decode_refuses_unknown_output(signature: ModelSignature) -> None:
    with pytest.raises(ProtocolError, match="no output 'nope'"):
        signature.decode(_body([X, N, FLAG], outputs=[{"name": "nope"}]))


def test_encode_json_and_binary(signature: ModelSignature) -> None:
    first, second = (o.name for o in signature.outputs)
    request = signature.decode(
        _body(
            [X, N, FLAG],
            id="7",
            outputs=[{"name": first}, {"name": second, "parameters": {"binary_data": True}}],
        )
    )
    values = {first: np.array([np.nan, np.inf]), second: np.array([1, 2], dtype=np.int64)}
    body, headers = signature.encode(request, values)
    split = int(headers[HEADER_LENGTH])
    response = json.loads(body[:split])
    assert response["id"] == "7"
    assert response["model_name"] == "m"
    out_first, out_second = response["outputs"]
    assert out_first["datatype"] == "FP64"
    assert out_first["shape"] == [2]
    assert np.isnan(out_first["data"][0])
    assert out_first["data"][1] == np.inf
    assert out_second["parameters"] == {"binary_data_size": 16}
    np.testing.assert_array_equal(np.frombuffer(body[split:], dtype=np.int64), [1, 2])

    plain = signature.decode(_body([X, N, FLAG]))
    body, headers = signature.encode(plain, values)
    assert headers == {"content-type": "application/json"}
    assert [o["name"] for o in json.loads(body)["outputs"]] == [first, second]


def test_models_with_non_tensor_io_are_refused() -> None:
    x = onnx.helper.make_tensor_sequence_value_info("s", onnx.TensorProto.FLOAT, None)
    graph = onnx.helper.make_graph([], "g", [x], [x])
    with pytest.raises(ValueError, match="only tensor inputs and outputs"):
        ModelSignature.from_model(onnx.helper.make_model(graph), "m")
