"""The public export API: PyTensor function or symbolic graph in, checked ONNX model out."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnx_ir.passes.common as ir_passes
import pytensor
from onnx_ir.traversal import RecursiveGraphIterator
from pytensor.compile import Function
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.traversal import graph_inputs
from pytensor.scalar import ScalarType
from pytensor.tensor.type import TensorType

from pytensor_onnx._version import __version__
from pytensor_onnx.builder import (
    NameRegistry,
    ONNXBuilder,
    is_random_generator,
    onnx_dtype,
    variable_dtype,
)
from pytensor_onnx.dims import input_dims
from pytensor_onnx.dispatch import convert_nodes
from pytensor_onnx.dispatch._loop import sink_weights_into_scans
from pytensor_onnx.dispatch.ifelse import sink_into_branches
from pytensor_onnx.inspect import annotate_provenance
from pytensor_onnx.optimize import PARAMETER, optimize
from pytensor_onnx.precision import float32_array, rewrite_in_float32
from pytensor_onnx.rewrite import rewrite_for_onnx
from pytensor_onnx.storage import (
    DEFAULT_EXTERNAL_DATA_THRESHOLD,
    save_with_external_data,
    wants_external_data,
)

#: The opset used when none is given.
DEFAULT_OPSET = 18
#: The oldest opset the converters target (Reduce* take axes as inputs from 18 on).
MIN_OPSET = 18
#: The metadata entry mapping the PyTensor names of the inputs and outputs to their ONNX
#: names (ONNX names are plain identifiers: ``σ_log__`` becomes ``sigma_log__``), as JSON
#: ``{"inputs": {name: onnx_name}, "outputs": {name: onnx_name}}``.
NAMES_METADATA_KEY = "pytensor_onnx.names"
#: The oldest IR version that can hold opset 18.
MIN_IR_VERSION = 8
#: The IR version that added ``metadata_props`` to nodes, graphs and functions (provenance).
NODE_METADATA_IR_VERSION = 10

PathLike = str | os.PathLike[str]


def supported_opsets() -> range:
    """The default-domain opsets :func:`export_onnx` accepts (18 up to the installed ONNX's)."""
    return range(MIN_OPSET, onnx.defs.onnx_opset_version() + 1)


def _ort_loads(ir_version: int, opset: int) -> bool:
    import onnxruntime as ort

    x = ir.Value(name="x", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape([1]))
    node = ir.Node("", "Neg", [x])
    node.outputs[0].name = "y"
    graph = ir.Graph([x], node.outputs, nodes=[node], opset_imports={"": opset})
    proto = ir.serde.serialize_model(ir.Model(graph, ir_version=ir_version))
    try:
        ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:
        return False
    return True


@functools.cache
def newest_ir_version() -> int:
    """The newest ONNX IR version that both the installed ONNX and ONNX Runtime accept."""
    for version in range(onnx.IR_VERSION, 7, -1):
        if _ort_loads(version, MIN_OPSET):
            return version
    return 8


def _has_node_metadata(graph: ir.Graph | ir.Function) -> bool:
    return any(
        node.metadata_props
        or any(
            _has_node_metadata(attr.value)
            for attr in node.attributes.values()
            if attr.type == ir.AttributeType.GRAPH
        )
        for node in graph
    )


def minimum_ir_version(model: ir.Model) -> int:
    """The oldest ONNX IR version that holds everything ``model`` uses.

    That is the oldest IR version of the ONNX release that introduced the newest opset the
    model imports (``onnx.helper.find_min_ir_version_for``: 8 for opset 18, 10 for 21), and
    at least :data:`NODE_METADATA_IR_VERSION` when nodes carry metadata (provenance).  Older
    runtimes refuse newer IR versions (onnxruntime-web 1.30 reads up to 13), so this is the
    default of :func:`export_onnx`.
    """
    opsets = [
        onnx.helper.make_opsetid(domain, version) for domain, version in model.opset_imports.items()
    ]
    version = max(MIN_IR_VERSION, onnx.helper.find_min_ir_version_for(opsets, ignore_unknown=True))
    if _has_node_metadata(model.graph) or any(
        _has_node_metadata(function) for function in model.functions.values()
    ):
        version = max(version, NODE_METADATA_IR_VERSION)
    return version


@functools.cache
def newest_runtime_opset() -> int:
    """The newest default-domain opset that the installed ONNX Runtime can run."""
    for opset in reversed(supported_opsets()):
        if _ort_loads(newest_ir_version(), opset):
            return opset
    return MIN_OPSET


@dataclass
class CapturedGraph:
    """A PyTensor graph ready for conversion.

    ``fgraph.inputs`` are the ONNX graph inputs (``input_names``) followed by the shared
    variables that become initializers (``initializers``, in the same order).
    """

    fgraph: FunctionGraph
    input_names: list[str]
    initializers: list[tuple[str, np.ndarray]]
    output_names: list[str]
    #: Converted with ``float32=True``: converters then compute in float32 only.
    float32: bool = False


def _check_representable(var: Variable, role: str) -> None:
    type_name = type(var.type).__name__
    if is_random_generator(var):
        return
    if isinstance(var.type, (TensorType, ScalarType)) and "Sparse" not in type_name:
        onnx_dtype(variable_dtype(var))
        return
    if "Sparse" in type_name:
        advice = "densify it first (pytensor.sparse.dense_from_sparse) or export a dense graph"
    elif "Random" in type_name:
        advice = (
            "only numpy Generator-based random variables (RandomGeneratorType) are converted; "
            "export the deterministic part of the graph (e.g. pass random draws in as inputs)"
        )
    else:
        advice = "ONNX graphs hold tensors only"
    raise TypeError(
        f"{role} {var} has type {var.type} ({type_name}), which ONNX cannot represent: {advice}"
    )


def _default_name(var: Variable, fallback: str) -> str:
    """``var``'s name; else ``seed`` for a random generator, else ``fallback``."""
    if var.name:
        return var.name
    return "seed" if is_random_generator(var) else fallback


def _shared_name(var: SharedVariable, index: int) -> str:
    return _default_name(var, f"shared_{index}")


def _resolve_shared_inputs(
    shared: list[SharedVariable], requested: Sequence[SharedVariable | str]
) -> list[SharedVariable]:
    chosen: list[SharedVariable] = []
    for item in requested:
        if isinstance(item, str):
            matches = [s for s in shared if s.name == item]
            if not matches:
                raise ValueError(
                    f"shared_inputs names {item!r}, but no shared variable of that name is used"
                )
            chosen.extend(m for m in matches if m not in chosen)
        elif isinstance(item, SharedVariable):
            if item not in shared:
                raise ValueError(
                    f"shared_inputs names {item}, which the exported outputs do not use"
                )
            if item not in chosen:
                chosen.append(item)
        else:
            raise TypeError(f"shared_inputs items must be shared variables or names, got {item!r}")
    return chosen


def capture(
    fn_or_inputs: Function | Sequence[Variable],
    outputs: Variable | Sequence[Variable] | None = None,
    *,
    shared_inputs: Sequence[SharedVariable | str] = (),
    include_updates: bool = False,
    float32: bool = False,
) -> CapturedGraph:
    """Collect the graph to export, clone it into a ``FunctionGraph`` and rewrite it for ONNX.

    Parameters
    ----------
    fn_or_inputs
        A compiled :class:`pytensor.compile.function.types.Function`, or the symbolic inputs.
    outputs
        The symbolic outputs (only with symbolic inputs).
    shared_inputs
        Shared variables (or their names) that stay graph inputs instead of initializers.
    include_updates
        Export a compiled function's shared-variable updates as extra outputs named
        ``<shared>_updated``; the updated shared variables become graph inputs.
    float32
        Convert float64 inputs, shared values and computation to float32 before rewriting
        (see :mod:`pytensor_onnx.precision`).
    """
    updates: list[tuple[SharedVariable, Variable]] = []
    if isinstance(fn_or_inputs, Function):
        if outputs is not None:
            raise TypeError("pass either a compiled function or (inputs, outputs), not both")
        maker = fn_or_inputs.maker
        user_inputs = [
            i.variable for i in maker.inputs if not isinstance(i.variable, SharedVariable)
        ]
        out_vars = [o.variable for o in maker.outputs]
        updates = [(i.variable, i.update) for i in maker.inputs if i.update is not None]
    elif isinstance(fn_or_inputs, Variable) or not isinstance(fn_or_inputs, Sequence):
        raise TypeError(
            "export_onnx takes a compiled pytensor.function or a list of symbolic input "
            f"variables (with outputs), got {type(fn_or_inputs).__name__}"
        )
    else:
        if outputs is None:
            raise TypeError("symbolic export needs outputs: export_onnx(inputs, outputs, path)")
        user_inputs = list(fn_or_inputs)
        out_vars = [outputs] if isinstance(outputs, Variable) else list(outputs)
        for var in [*user_inputs, *out_vars]:
            if not isinstance(var, Variable):
                raise TypeError(f"expected PyTensor variables, got {var!r}")
        repeated = {var for var in user_inputs if user_inputs.count(var) > 1}
        if repeated:
            raise ValueError(f"inputs {sorted(map(str, repeated))} are given more than once")
        for var in user_inputs:
            if isinstance(var, (SharedVariable, Constant)):
                raise TypeError(
                    f"input {var} is a {type(var).__name__}; inputs must be free variables"
                )

    if not out_vars:
        raise ValueError("there is nothing to export: the graph has no outputs")
    if updates and not include_updates:
        warnings.warn(
            f"the function updates {len(updates)} shared variable(s); updates are not exported "
            "(pass include_updates=True to export them as outputs)",
            UserWarning,
            stacklevel=3,
        )
        updates = []

    roots = [*out_vars, *(u for _, u in updates)]
    shared: list[SharedVariable] = []
    for var in graph_inputs(roots):
        if isinstance(var, SharedVariable):
            if var not in shared:
                shared.append(var)
        elif not isinstance(var, Constant) and var not in user_inputs:
            raise ValueError(f"the outputs depend on {var}, which is not among the inputs")
    for var, _ in updates:
        if var not in shared:
            shared.append(var)
    as_inputs = _resolve_shared_inputs(shared, shared_inputs)
    as_inputs.extend(var for var, _ in updates if var not in as_inputs)
    # A random generator is always an input: its int64 seed (see dispatch/random.py).
    as_inputs.extend(var for var in shared if is_random_generator(var) and var not in as_inputs)
    as_initializers = [s for s in shared if s not in as_inputs]

    for var in user_inputs:
        _check_representable(var, "input")
    for var in shared:
        _check_representable(var, "shared variable")

    input_names = [_default_name(v, f"input_{i}") for i, v in enumerate(user_inputs)]
    input_names += [_shared_name(v, i) for i, v in enumerate(as_inputs)]
    initializers = [
        (_shared_name(v, i), np.asarray(v.get_value(borrow=True)))
        for i, v in enumerate(as_initializers, start=len(as_inputs))
    ]
    output_names = [v.name or f"output_{i}" for i, v in enumerate(out_vars)]
    output_names += [f"{_shared_name(v, i)}_updated" for i, (v, _) in enumerate(updates)]

    fgraph = FunctionGraph([*user_inputs, *as_inputs, *as_initializers], roots, clone=True)
    if float32:
        fgraph = rewrite_in_float32(fgraph, rewrite_for_onnx)
        initializers = [(name, float32_array(array)) for name, array in initializers]
    else:
        rewrite_for_onnx(fgraph)
    return CapturedGraph(fgraph, input_names, initializers, output_names, float32)


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence the logger ``name`` (and its children) below CRITICAL for the duration."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector.

    Rewriting and conversion allocate many long-lived objects, and the collector's passes
    over the growing heap cost time that grows with graph size: ``export_onnx`` of a chain
    of 30,000 nodes (benchmarks/bench_export.py's) took 7.9 s with them and 6.8 s without
    on PyTensor 3.3 (13.6 and 11.1 s on 2.38); per node it is now no more than at 1,000
    nodes.  The garbage cycles that rewrites leave (replaced nodes) wait for the first
    collection after the pause.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _name_map(names: Sequence[str], values: Sequence[ir.Value]) -> dict[str, str]:
    """``{original name: ONNX name}``; of several variables sharing a name, the first."""
    mapping: dict[str, str] = {}
    for name, value in zip(names, values, strict=True):
        mapping.setdefault(name, str(value.name))
    return mapping


@_gc_paused()
def build_model(
    captured: CapturedGraph,
    *,
    opset: int = DEFAULT_OPSET,
    graph_name: str = "pytensor_graph",
    producer_name: str = "pytensor-onnx",
    producer_version: str = __version__,
    doc_string: str | None = None,
    value_map: dict[Variable, ir.Value] | None = None,
    op_from_graph: str = "inline",
    portable: bool = True,
) -> ir.Model:
    """Convert a captured graph into an :class:`onnx_ir.Model` (no checks, nothing written).

    If ``value_map`` is given, it receives the ONNX value of every converted variable of
    ``captured.fgraph`` (for provenance and intermediate-value verification).
    ``op_from_graph`` and ``portable`` are the export options of :func:`export_onnx`.
    """
    fgraph = captured.fgraph
    builder = ONNXBuilder(
        opset,
        graph_name,
        options={
            "op_from_graph": op_from_graph,
            "float32": captured.float32,
            "portable": portable,
            # Whether the graph computes in float64 anywhere (a float32 graph's model holds
            # no float64 tensor, for runtimes without float64).
            "float64": any(
                getattr(var.type, "dtype", None) == "float64" for var in fgraph.variables
            ),
        },
    )
    names = NameRegistry()
    n_inputs = len(captured.input_names)
    inputs = fgraph.inputs[:n_inputs]
    claimed_names = [names.claim(name) for name in captured.input_names]
    initializers = zip(fgraph.inputs[n_inputs:], captured.initializers, strict=True)
    fixed = {var: np.shape(array) for var, (_, array) in initializers}
    all_dims = input_dims(fgraph, inputs, claimed_names, fixed)
    for var, claimed, dims in zip(inputs, claimed_names, all_dims, strict=True):
        value = ir.Value(
            name=claimed, type=ir.TensorType(onnx_dtype(variable_dtype(var))), shape=ir.Shape(dims)
        )
        builder.graph.inputs.append(value)
        builder.bind(var, value)
    for var, (name, array) in zip(fgraph.inputs[n_inputs:], captured.initializers, strict=True):
        array = np.asarray(array, dtype=variable_dtype(var))
        tensor = ir.Tensor(np.asarray(array, order="C"))  # ascontiguousarray makes 0-d 1-d
        value = ir.Value(
            name=names.claim(name),
            type=ir.TensorType(tensor.dtype),
            shape=ir.Shape(array.shape),
            const_value=tensor,
        )
        value.meta[PARAMETER] = True
        builder.graph.register_initializer(value)
        builder.bind(var, value)

    convert_nodes(fgraph.toposort(), builder)
    if value_map is not None:
        # In conversion order, so that the first variable bound to a value is its creator.
        converted = [*fgraph.inputs, *(out for node in fgraph.toposort() for out in node.outputs)]
        value_map.update(
            (var, found) for var in converted if (found := builder.lookup(var)) is not None
        )

    for var, name in zip(fgraph.outputs, captured.output_names, strict=True):
        value = builder.add_output(builder.value(var))
        value.name = names.claim(name)
        value.dtype = onnx_dtype(variable_dtype(var))
        value.shape = ir.Shape(getattr(var.type, "shape", ()))
    sink_into_branches(builder.graph)
    sink_weights_into_scans(builder.graph)
    builder.graph.opset_imports.update(builder.opset_imports)

    model = ir.Model(
        builder.graph,
        functions=list(builder.functions.values()),
        ir_version=MIN_IR_VERSION,
        producer_name=producer_name,
        producer_version=producer_version,
        doc_string=doc_string,
    )
    model.metadata_props["pytensor_version"] = pytensor.__version__
    model.metadata_props["pytensor_onnx_version"] = __version__
    model.metadata_props[NAMES_METADATA_KEY] = json.dumps(
        {
            "inputs": _name_map(captured.input_names, builder.graph.inputs),
            "outputs": _name_map(captured.output_names, builder.graph.outputs),
        },
        ensure_ascii=False,
    )
    ir_passes.RemoveUnusedNodesPass()(model)
    ir_passes.NameFixPass()(model)
    # ONNX's symbolic shape inference names the output dims after the input dims they equal
    # and fills in dims PyTensor does not know statically (e.g. from weight shapes).
    # The pass logs a traceback when inference fails and leaves the model unchanged; the
    # failure is raised by check_model instead, once, as an InvalidModelError.
    with _quiet_logger("onnx_ir"):
        ir_passes.ShapeInferencePass(data_prop=False)(model)
    _forget_invented_dims(model)
    model.ir_version = minimum_ir_version(model)
    return model


def _forget_invented_dims(model: ir.Model) -> None:
    """Drop the names ONNX shape inference invents (``unk__3``) from subgraph inputs.

    Such a name states nothing, but tract takes it for a new symbol of the loop body and
    cannot unify it with the enclosing graph's dimension expressions.
    """
    for node in RecursiveGraphIterator(model.graph):
        for attr in node.attributes.values():
            if attr.type != ir.AttributeType.GRAPH:
                continue
            for value in attr.as_graph().inputs:
                if value.shape is not None and any(map(_invented, value.shape)):
                    value.shape = ir.Shape([None if _invented(d) else d for d in value.shape])


def _invented(dim: object) -> bool:
    """Whether ``dim`` is a dimension named by shape inference (``unk__N``)."""
    return isinstance(dim, ir.SymbolicDim) and (dim.value or "").startswith("unk__")


def feeds_by_name(model: onnx.ModelProto, values: Mapping[str, object]) -> dict[str, object]:
    """Key input values by the model's ONNX input names.

    ``values`` may use the original PyTensor (e.g. PyMC) names recorded in the model's
    :data:`NAMES_METADATA_KEY` entry or the ONNX names themselves.

    Raises
    ------
    KeyError
        For a name that is neither, listing the names the model knows.
    """
    known = {inp.name for inp in model.graph.input}
    renamed: dict[str, str] = {}
    for prop in model.metadata_props:
        if prop.key == NAMES_METADATA_KEY:
            renamed = json.loads(prop.value)["inputs"]
    feeds: dict[str, object] = {}
    for name, value in values.items():
        onnx_name = name if name in known else renamed.get(name)
        if onnx_name is None:
            choices = sorted(known | set(renamed))
            raise KeyError(f"the model has no input named {name!r}; its inputs are {choices}")
        if onnx_name in feeds:
            raise ValueError(f"two values given for model input {onnx_name!r}")
        feeds[onnx_name] = value
    return feeds


class InvalidModelError(RuntimeError):
    """The exported model fails ONNX's checks or does not load in ONNX Runtime.

    That is a bug of a converter (of this package or a user-registered one), never of the
    user's graph: please report it with the graph that shows it.
    """


def _converter_bug(what: str, err: Exception) -> InvalidModelError:
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return InvalidModelError(
        f"converter bug: the exported model {what}: {message}\n(please report this at the "
        "pytensor-onnx issue tracker with the graph that shows it)"
    )


def check_model(proto: onnx.ModelProto) -> None:
    """Run the ONNX checker (full check) and strict shape inference.

    ONNX's experimental data propagation is left off: with onnx 1.23 it rejected a valid
    ``Mul`` of shapes ``[60, 1]`` and ``[1, 2]`` (a PyMC mixture-model gradient).

    Raises
    ------
    InvalidModelError
        If the model fails either.
    """
    try:
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=False)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise _converter_bug("fails ONNX's checks", err) from err


def check_loads(model: onnx.ModelProto | bytes) -> None:
    """Load ``model`` (a proto or its serialized bytes) in ONNX Runtime (CPU, default graph
    optimizations).

    The checker and strict shape inference accept some models that ONNX Runtime refuses
    (unsupported type combinations, shapes its optimizer rejects): only loading proves it.

    Raises
    ------
    InvalidModelError
        If ONNX Runtime cannot load the model.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # the raised error says it all; no coloured log line
    try:
        data = model if isinstance(model, bytes) else model.SerializeToString()
        ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # ORT raises several pybind11 exception types
        raise _converter_bug("does not load in ONNX Runtime", err) from err


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(data: bytes, path: PathLike) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes the file private (0600); give it the permissions open() would.
        os.chmod(tmp, 0o666 & ~_current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_writable(path: PathLike) -> None:
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write the ONNX model to {target}: it is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write the ONNX model to {target}: {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write the ONNX model to {target}: {parent} is not writable")


def _check_options(
    *,
    ir_version: object,
    metadata: object,
    names: Mapping[str, object],
    op_from_graph: object,
    portable: object,
) -> None:
    """Refuse export options of the wrong type or value before any work is done."""
    from pytensor_onnx.dispatch.builders import OP_FROM_GRAPH_MODES

    if ir_version is not None and (isinstance(ir_version, bool) or not isinstance(ir_version, int)):
        raise TypeError(f"ir_version must be an int, got {ir_version!r}")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping of str to str, got {metadata!r}")
        for key, value in metadata.items():
            if not (isinstance(key, str) and isinstance(value, str)):
                raise TypeError(f"metadata entries must be str: str, got {key!r}: {value!r}")
    for option, value in names.items():
        if not isinstance(value, str) or not value:
            raise ValueError(f"{option} must be a non-empty string, got {value!r}")
    if op_from_graph not in OP_FROM_GRAPH_MODES:
        raise ValueError(
            f"op_from_graph must be one of {OP_FROM_GRAPH_MODES}, got {op_from_graph!r}"
        )
    if not isinstance(portable, bool):
        raise TypeError(f"portable must be a bool, got {portable!r}")


def export_onnx(
    fn_or_inputs: Function | Sequence[Variable],
    outputs_or_path: Variable | Sequence[Variable] | PathLike | None = None,
    path: PathLike | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    shared_inputs: Sequence[SharedVariable | str] = (),
    include_updates: bool = False,
    graph_name: str = "pytensor_graph",
    producer_name: str = "pytensor-onnx",
    producer_version: str = __version__,
    doc_string: str | None = None,
    check: bool = True,
    float32: bool = False,
    external_data: bool | None = None,
    external_data_threshold: int = DEFAULT_EXTERNAL_DATA_THRESHOLD,
    verify: bool | Sequence[object] | Mapping[str, object] = False,
    provenance: bool = False,
    ir_version: int | None = None,
    metadata: Mapping[str, str] | None = None,
    op_from_graph: str = "inline",
    portable: bool = True,
) -> onnx.ModelProto:
    """Export a PyTensor graph to ONNX.

    Call it as ``export_onnx(fn, path)`` with a compiled function, or as
    ``export_onnx(inputs, outputs, path)`` with symbolic variables.  The path is optional.

    Parameters
    ----------
    fn_or_inputs
        A compiled ``pytensor.function``, or the list of symbolic input variables.
    outputs_or_path
        With a function: the path. With symbolic inputs: the output variable(s).
    path
        With symbolic inputs: where to write the model (``.onnx``). Written atomically.
    opset
        The default-domain opset, from 18 up to the newest the installed ONNX knows.
    shared_inputs
        Shared variables, or their names, that become graph inputs instead of initializers
        (e.g. PyMC ``pm.Data`` containers).
    include_updates
        For a compiled function with updates: export the updated shared values as extra
        outputs ``<name>_updated``, the updated shared variables becoming inputs.
        Without it, updates are left out with a warning.
    graph_name, producer_name, producer_version, doc_string
        Recorded in the model.
    check
        Run the ONNX checker (``full_check``) and strict shape inference, and load the
        model in ONNX Runtime, before returning or writing it (models with external data
        are checked but not loaded).  A failure raises :class:`InvalidModelError`.
    float32
        Convert the float64 parts of the graph (inputs, shared values, computation,
        outputs) to float32; integer and bool parts are unchanged.  Use
        :func:`~pytensor_onnx.verify` to measure the accuracy lost.
    external_data
        Write initializers to ``<path>.<hash>.data`` next to the model: ``None`` (default) does so
        when they exceed 1 GiB (protobuf caps a single file at 2 GiB), ``True`` always,
        ``False`` never (single file).  Needs ``path``.
    external_data_threshold
        With external data, initializers of at least this many bytes go to the data file.
    verify
        Check the model against PyTensor before writing it (see :func:`~pytensor_onnx.verify`):
        ``True`` with random inputs, or the input values (by position or name).  A mismatch
        raises :class:`~pytensor_onnx.verify.VerificationError` and nothing is written.
    provenance
        Record on every ONNX node the PyTensor Op and variable it was converted from
        (node ``metadata_props``; no file paths).
    ir_version
        The ONNX IR version to write; by default the oldest that holds the model
        (:func:`minimum_ir_version`: 8 for opset 18), which every runtime that knows the
        opset loads.  A higher one may be chosen, up to the installed ONNX's.
    metadata
        Extra ``metadata_props`` entries for the model (e.g. how to unpack an input).
    op_from_graph
        How ``OpFromGraph`` ops become ONNX: ``"inline"`` (default), their inner graphs
        copied into the graph; ``"function"``, one ONNX local function per Op, called where
        it is used (OpenVINO, tract and onnx2torch refuse local functions).
    portable
        ``True`` (default): constructions that every runtime of docs/runtimes.md computes
        alike.  ``False``: faster forms for ONNX Runtime that other runtimes cannot run or
        compute differently: the random generator's plain right shifts (OpenVINO computes
        them as float32 divisions; the same draws in up to a quarter less time), strided
        slices along axes of unknown size, negative ``GatherND``/``ScatterND`` indices and
        sorts along axes of unknown length (tract), and entries of a vector of any length
        taken by ``GatherElements`` (``onnx.reference`` fails beyond 64 entries; 17x faster
        than ``Gather`` in ONNX Runtime).  ``mode="ONNX"`` builds the ``False`` forms.

    Returns
    -------
    onnx.ModelProto
        The exported model; also written to ``path`` when given.  With external data, the
        returned proto references the data file instead of holding the tensors.

    Raises
    ------
    UnsupportedOpError
        If any Op in the graph has no converter; it lists all of them at once.
    TypeError, ValueError
        For arguments that cannot be exported (see the message).
    """
    if isinstance(fn_or_inputs, Function):
        if path is not None:
            raise TypeError("with a compiled function, call export_onnx(fn, path)")
        outputs, target = None, outputs_or_path
    else:
        outputs, target = outputs_or_path, path
    if target is not None and not isinstance(target, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(target).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in supported_opsets():
        raise ValueError(
            f"opset {opset!r} is not supported: choose {supported_opsets().start}.."
            f"{supported_opsets().stop - 1} (the installed onnx {onnx.__version__} knows up to "
            f"{onnx.defs.onnx_opset_version()})"
        )
    _check_options(
        ir_version=ir_version,
        metadata=metadata,
        names={"graph_name": graph_name, "producer_name": producer_name},
        op_from_graph=op_from_graph,
        portable=portable,
    )
    if target is not None:
        _check_writable(target)

    with _gc_paused():
        captured = capture(
            fn_or_inputs,
            outputs,  # type: ignore[arg-type]
            shared_inputs=shared_inputs,
            include_updates=include_updates,
            float32=float32,
        )
        value_map: dict[Variable, ir.Value] = {}
        model = build_model(
            captured,
            opset=opset,
            graph_name=graph_name,
            producer_name=producer_name,
            producer_version=producer_version,
            doc_string=doc_string,
            value_map=value_map,
            op_from_graph=op_from_graph,
            portable=portable,
        )
        model.metadata_props.update(metadata or {})
        if provenance:
            annotate_provenance(model, value_map)
        optimize(model)
    needed = minimum_ir_version(model)
    if ir_version is not None:
        if not needed <= ir_version <= onnx.IR_VERSION:
            raise ValueError(
                f"ir_version {ir_version} is not supported: choose {needed}..{onnx.IR_VERSION} "
                f"(this model, at opset {opset}, needs IR version {needed} or newer)"
            )
        model.ir_version = ir_version
    else:
        model.ir_version = needed
    verifier = None
    if verify is not False:
        from pytensor_onnx.verify import verify_export

        verifier = functools.partial(verify_export, fn_or_inputs, outputs, verify)
    if wants_external_data(model, target, external_data):
        assert target is not None
        return save_with_external_data(
            model, target, threshold=external_data_threshold, check=check, verify=verifier
        )
    proto = ir.serde.serialize_model(model)
    data = proto.SerializeToString() if check or target is not None else b""
    if check:
        check_model(proto)
        check_loads(data)  # the bytes that are written: serialized once
    if verifier is not None:
        verifier(proto)
    if target is not None:
        write_atomically(data, target)
    return proto


__all__ = [
    "DEFAULT_OPSET",
    "NAMES_METADATA_KEY",
    "CapturedGraph",
    "InvalidModelError",
    "build_model",
    "capture",
    "check_loads",
    "check_model",
    "export_onnx",
    "feeds_by_name",
    "minimum_ir_version",
    "newest_ir_version",
    "newest_runtime_opset",
    "supported_opsets",
]
