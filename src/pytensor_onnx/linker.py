"""ONNX Runtime as a PyTensor backend: the :class:`ONNXLinker` and the ``"ONNX"`` mode.

The linker follows PyTensor's ``JITLinker`` pattern (as its JAX and Numba backends do):
``fgraph_convert`` exports the rewritten ``FunctionGraph`` to an in-memory ONNX model with the
same converters as :func:`pytensor_onnx.export_onnx`, ``jit_compile`` creates one
``onnxruntime.InferenceSession`` for it, and the thunk feeds the function's input storage to
that session on every call.

Every ``FunctionGraph`` input becomes an ONNX graph input, shared variables included, so that
``set_value`` between calls is seen by the next call; shared-variable updates are extra
outputs of the ``FunctionGraph`` (``FunctionMaker`` appends them) and PyTensor's ``Function``
writes them back after each call.  A random generator is fed as its int64 seed, derived from
the NumPy ``Generator`` in its storage, and a generator output (the update of a shared
generator) comes back as a new ``Generator``: each call draws anew, and ``set_value`` reseeds
(see :mod:`pytensor_onnx.dispatch.random`).  After ``import pytensor_onnx``,
``pytensor.function(..., mode="ONNX")`` uses this linker with the CPU execution provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from copy import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
from pytensor.compile.mode import (
    Mode,
    predefined_linkers,
    predefined_modes,
    register_linker,
    register_mode,
)
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.link.basic import JITLinker
from pytensor.link.utils import raise_with_op
from pytensor.scalar import ScalarType

from pytensor_onnx.builder import is_random_generator
from pytensor_onnx.dispatch.random import generator_from_seed, seed_from_generator
from pytensor_onnx.export import (
    DEFAULT_OPSET,
    CapturedGraph,
    _check_representable,
    build_model,
    check_model,
    supported_opsets,
)
from pytensor_onnx.optimize import optimize
from pytensor_onnx.rewrite import INCOMPATIBLE_REWRITES, REQUIRED_REWRITES, onnx_rewrite_query

#: Execution providers used when none are given.
DEFAULT_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)


@dataclass(frozen=True)
class ConvertedGraph:
    """A ``FunctionGraph`` converted to ONNX, before an ONNX Runtime session is made for it.

    Attributes
    ----------
    model
        The serialized model.
    input_names
        The ONNX graph inputs, in order.
    fed
        For each ONNX graph input, the position of its ``FunctionGraph`` input.
    frozen
        ``(position, value)`` of the ``FunctionGraph`` inputs stored in the model as
        initializers instead (the value object they were made from).
    output_names
        The ONNX output name of each ``FunctionGraph`` output, in order.
    scalar_inputs
        Positions (among the ONNX graph inputs) of inputs of PyTensor ``ScalarType`` (NumPy
        scalars, which ONNX Runtime only takes as 0-d arrays).
    scalar_outputs
        Positions of outputs of ``ScalarType`` (returned as NumPy scalars, as PyTensor does).
    generator_inputs
        Positions (among the ONNX graph inputs) of random generators, fed as their int64 seed
        (:func:`~pytensor_onnx.dispatch.random.seed_from_generator`).
    generator_outputs
        Positions of random-generator outputs, returned as NumPy generators made from the
        seed the model computes (:func:`~pytensor_onnx.dispatch.random.generator_from_seed`).
    """

    model: onnx.ModelProto
    input_names: tuple[str, ...]
    fed: tuple[int, ...]
    frozen: tuple[tuple[int, Any], ...]
    output_names: tuple[str, ...]
    scalar_inputs: frozenset[int]
    scalar_outputs: frozenset[int]
    generator_inputs: frozenset[int]
    generator_outputs: frozenset[int]

    @property
    def plain(self) -> bool:
        """Whether inputs and outputs are the ONNX values themselves (no scalar or generator
        conversions)."""
        return not (
            self.scalar_inputs
            or self.scalar_outputs
            or self.generator_inputs
            or self.generator_outputs
        )


def convert_fgraph(
    fgraph: FunctionGraph,
    opset: int = DEFAULT_OPSET,
    check: bool = False,
    constants: Mapping[int, Any] | None = None,
) -> ConvertedGraph:
    """Convert an already rewritten ``FunctionGraph`` into an in-memory ONNX model.

    Parameters
    ----------
    fgraph
        The graph, rewritten with the ONNX rewrite set (the ``"ONNX"`` mode does that).
        Its inputs, shared variables included, become graph inputs.
    opset
        The default-domain opset.
    check
        Run the ONNX checker and strict shape inference on the model.
    constants
        Values of inputs (by position in ``fgraph.inputs``) to store in the model as
        initializers instead of graph inputs.

    Raises
    ------
    UnsupportedOpError
        If any Op has no converter (listing all of them).
    TypeError
        If an input cannot be represented in ONNX (random generators, sparse...).
    """
    for var in fgraph.inputs:
        _check_representable(var, "input")
    constants = dict(constants or {})
    fed = tuple(i for i in range(len(fgraph.inputs)) if i not in constants)
    graph = fgraph
    if constants:
        # ``CapturedGraph`` wants graph inputs first, initializers last: a second view of
        # the same nodes with the inputs in that order (nothing is cloned or changed).
        order = [*fed, *constants]
        graph = FunctionGraph([fgraph.inputs[i] for i in order], fgraph.outputs, clone=False)
    captured = CapturedGraph(
        graph,
        input_names=[_input_name(fgraph.inputs[i], i) for i in fed],
        initializers=[
            (_input_name(fgraph.inputs[i], i), np.asarray(v)) for i, v in constants.items()
        ],
        output_names=[f"output_{i}" for i in range(len(fgraph.outputs))],
    )
    # Only ONNX Runtime runs it: the faster, non-portable forms.
    model = build_model(
        captured,
        opset=opset,
        graph_name=getattr(fgraph, "name", None) or "pytensor_function",
        portable=False,
    )
    optimize(model)
    proto = ir.serde.serialize_model(model)
    if check:
        check_model(proto)
    scalar_positions = _scalar_positions(fgraph.inputs)
    generator_positions = _generator_positions(fgraph.inputs)
    return ConvertedGraph(
        model=proto,
        input_names=tuple(value.name or "" for value in model.graph.inputs),
        fed=fed,
        frozen=tuple(constants.items()),
        output_names=tuple(value.name or "" for value in model.graph.outputs),
        scalar_inputs=frozenset(j for j, i in enumerate(fed) if i in scalar_positions),
        scalar_outputs=_scalar_positions(fgraph.outputs),
        generator_inputs=frozenset(j for j, i in enumerate(fed) if i in generator_positions),
        generator_outputs=_generator_positions(fgraph.outputs),
    )


def _input_name(var: Variable, index: int) -> str:
    return var.name or f"input_{index}"


def _scalar_positions(variables: Sequence[Variable]) -> frozenset[int]:
    return frozenset(i for i, var in enumerate(variables) if isinstance(var.type, ScalarType))


def _generator_positions(variables: Sequence[Variable]) -> frozenset[int]:
    return frozenset(i for i, var in enumerate(variables) if is_random_generator(var))


def _run_nothing(*args: Any) -> None:
    """The runner of a function without outputs (an ONNX graph needs at least one)."""
    return None


#: ``run(output_names, feeds, run_options)``: ONNX Runtime's Python wrapper or C++ binding.
SessionRun = Callable[[list[str], dict[str, Any], Any], list[Any]]


def session_run(session: Any) -> SessionRun:
    """The cheapest correct way to call ``session`` on every call of a compiled function.

    ``InferenceSession.run`` is a Python wrapper around the C++ binding ``session._sess.run``.
    Per call it checks that every graph input is fed, rejects ``OrtValue`` feeds made by
    another session, guards WebGPU graph capture, and retries with the fallback providers when
    an execution provider fails.  None of these can matter for the runners of this module on a
    CPU-only session: they feed every graph input by construction, the values are the NumPy
    arrays of PyTensor's input storage, graph capture is off (checked here, once), and the CPU
    provider has nothing to fall back to.  So for such sessions the binding is called directly
    (about 1 µs less per call on a small graph; its errors, e.g. wrong dtype or rank, are the
    wrapper's).  Any other session keeps the wrapper.
    """
    binding = getattr(session, "_sess", None)
    capture = getattr(binding, "is_webgpu_graph_capture_enabled", None)
    if (
        binding is None
        or list(session.get_providers()) != ["CPUExecutionProvider"]
        or (capture is not None and capture())
    ):
        return session.run
    return binding.run


def _make_runner(
    session: Any, converted: ConvertedGraph, n_inputs: int
) -> Callable[..., list[Any]]:
    """The function that runs the model on given values: feeds in, ONNX Runtime, outputs out.

    It takes the values of all ``n_inputs`` ``FunctionGraph`` inputs, in order.  (The thunk of
    the common case, :func:`_fast_thunk`, does the same work reading the storage cells.)
    """
    run = session_run(session)
    input_names = converted.input_names
    fed = converted.fed
    output_names = list(converted.output_names)
    scalar_in = converted.scalar_inputs
    scalar_out = converted.scalar_outputs
    generator_in = converted.generator_inputs
    generator_out = converted.generator_outputs
    if converted.plain and fed == tuple(range(n_inputs)):

        def run_arrays(*args: Any) -> list[Any]:
            return run(output_names, dict(zip(input_names, args)), None)  # noqa: B905

        return run_arrays

    def run_general(*args: Any) -> list[Any]:
        feeds = {
            name: np.asarray(args[i])
            if j in scalar_in
            else seed_from_generator(args[i])
            if j in generator_in
            else args[i]
            for j, (name, i) in enumerate(zip(input_names, fed))  # noqa: B905
        }
        outputs = run(output_names, feeds, None)
        for k in scalar_out:
            outputs[k] = outputs[k][()]
        for k in generator_out:
            outputs[k] = generator_from_seed(outputs[k])
        return outputs

    return run_general


#: ``(storage cell, value)`` of each frozen input: the value the session's model was made from.
FrozenCells = tuple[tuple[list[Any], Any], ...]


def _frozen_cells(converted: ConvertedGraph, input_cells: Sequence[list[Any]]) -> FrozenCells:
    return tuple((input_cells[i], value) for i, value in converted.frozen)


def _fast_thunk(
    run: SessionRun,
    converted: ConvertedGraph,
    input_cells: Sequence[list[Any]],
    output_cells: Sequence[list[Any]],
    on_error: Callable[[Callable[[], list[Any]]], None],
    refreeze: Callable[[], tuple[SessionRun, FrozenCells]],
) -> Callable[[], list[Any]]:
    """The thunk of a graph without ``ScalarType`` inputs or outputs: one frame per call.

    It reads the input cells straight into the feed dictionary, calls ONNX Runtime, stores the
    outputs in their cells (callers like ``Scan.perform`` read them there) and also returns them
    (``Function.__call__`` then uses the returned list instead of collecting the cells).  One
    input and one output, the common small case, skip the comprehension and the loop (each
    costs a few tenths of a microsecond, several percent of a small graph's call).  With frozen
    shared values (``constant_shared``) it first checks that they are still the objects the
    model was made from; if one was replaced, ``refreeze`` exports again and gives the new
    session's ``run`` and frozen cells.
    """
    feeds = tuple(
        (name, input_cells[i]) for name, i in zip(converted.input_names, converted.fed, strict=True)
    )
    frozen = _frozen_cells(converted, input_cells)
    output_names = list(converted.output_names)
    one_input = len(feeds) == 1
    first_name, first_cell = feeds[0] if feeds else ("", [None])
    one_output = len(output_cells) == 1
    first_output = output_cells[0]

    def thunk() -> list[Any]:
        nonlocal run, frozen
        try:
            for cell, value in frozen:
                if cell[0] is not value:
                    run, frozen = refreeze()
                    break
            if one_input:
                fed = {first_name: first_cell[0]}
            else:
                fed = {name: cell[0] for name, cell in feeds}
            outputs = run(output_names, fed, None)
        except Exception:
            on_error(thunk)
            raise
        if one_output:
            first_output[0] = outputs[0]
        else:
            for cell, value in zip(output_cells, outputs):  # noqa: B905 (hot loop)
                cell[0] = value
        return outputs

    return thunk


def _general_thunk(
    runner: Callable[..., list[Any] | None],
    input_cells: Sequence[list[Any]],
    output_cells: Sequence[list[Any]],
    on_error: Callable[[Callable[[], list[Any]]], None],
) -> Callable[[], list[Any]]:
    """The thunk of any graph: calls ``runner`` (see :meth:`ONNXLinker.jit_compile`) on the
    values of the input cells, stores the outputs in their cells and returns them."""

    def thunk() -> list[Any]:
        try:
            outputs = runner(*[cell[0] for cell in input_cells]) or []
        except Exception:
            on_error(thunk)
            raise
        for cell, value in zip(output_cells, outputs):  # noqa: B905 (hot loop)
            cell[0] = value
        return outputs

    return thunk


class ONNXLinker(JITLinker):
    """A PyTensor ``Linker`` that runs the whole graph as one ONNX Runtime session.

    Parameters
    ----------
    providers
        ONNX Runtime execution providers, in order of preference (default: CPU only).
        Entries may be provider names or ``(name, options)`` pairs, as ONNX Runtime takes them.
    session_options
        An ``onnxruntime.SessionOptions`` (threads, graph optimization level...).
    opset
        The default-domain opset of the generated models.
    check
        Run the ONNX checker and strict shape inference when compiling (slower; off by default).
    constant_shared
        Store the values of shared variables that the function does not update in the model
        as initializers, so that ONNX Runtime can pre-pack and constant-fold them (faster
        calls), instead of feeding them on every call.  ``set_value`` is still seen: a new
        value object makes the next call export again and create a new session (slow); but
        in-place changes of ``get_value(borrow=True)`` are not seen.
    allow_gc, schedule
        As for other PyTensor linkers.

    Attributes
    ----------
    onnx_model
        The compiled function's ONNX model (``None`` before compilation).
    session
        The compiled function's ``onnxruntime.InferenceSession`` (``None`` before).
    """

    required_rewrites = REQUIRED_REWRITES
    incompatible_rewrites = INCOMPATIBLE_REWRITES

    def __init__(
        self,
        providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
        session_options: Any = None,
        opset: int = DEFAULT_OPSET,
        check: bool = False,
        constant_shared: bool = False,
        *,
        allow_gc: bool | None = None,
        schedule: Callable[..., Any] | None = None,
    ) -> None:
        if isinstance(opset, bool) or not isinstance(opset, int) or opset not in supported_opsets():
            raise ValueError(
                f"opset {opset!r} is not supported: choose {supported_opsets().start}.."
                f"{supported_opsets().stop - 1}"
            )
        super().__init__(allow_gc=allow_gc, schedule=schedule)
        self.providers = tuple(providers) if providers else DEFAULT_PROVIDERS
        self.session_options = session_options
        self.opset = opset
        self.check = check
        self.constant_shared = constant_shared
        self.onnx_model: onnx.ModelProto | None = None
        self.session: Any = None

    def accept(
        self,
        fgraph: FunctionGraph,
        no_recycling: Sequence[Variable] | None = None,
        profile: Any = None,
    ) -> ONNXLinker:
        """Associate ``fgraph`` with this linker (a configured copy if it already has one)."""
        if self.fgraph is not None and self.fgraph is not fgraph:
            fresh = copy(self)
            fresh.fgraph = None
            fresh.onnx_model = None
            fresh.session = None
            return fresh.accept(fgraph, no_recycling, profile)
        super().accept(fgraph, no_recycling, profile)
        return self

    def fgraph_convert(
        self,
        fgraph: FunctionGraph,
        order: Any = None,
        input_storage: Any = None,
        output_storage: Any = None,
        storage_map: Any = None,
        **kwargs: Any,
    ) -> ConvertedGraph:
        """Export ``fgraph`` to an in-memory ONNX model (raises ``UnsupportedOpError``).

        ``storage_map`` gives the current values of shared variables for ``constant_shared``.
        """
        constants = {}
        if self.constant_shared and storage_map is not None:
            updated = set(getattr(fgraph, "update_mapping", {}).values())
            constants = {
                i: storage_map[var][0]
                for i, var in enumerate(fgraph.inputs)
                if isinstance(var, SharedVariable)
                and i not in updated
                and not is_random_generator(var)
            }
        return self._convert(fgraph, constants)

    def _convert(self, fgraph: FunctionGraph, constants: dict[int, Any]) -> ConvertedGraph:
        converted = convert_fgraph(fgraph, opset=self.opset, check=self.check, constants=constants)
        self.onnx_model = converted.model
        return converted

    def _start_session(self, converted: ConvertedGraph) -> Any:
        """Create the ``InferenceSession`` of ``converted`` (replacing any earlier one)."""
        import onnxruntime as ort

        self.session = ort.InferenceSession(
            converted.model.SerializeToString(),
            sess_options=self.session_options,
            providers=list(self.providers),
        )
        return self.session

    def _refreeze(self, values: dict[int, Any]) -> ConvertedGraph:
        """Export again with new frozen values (``constant_shared``) and start its session."""
        assert self.fgraph is not None
        converted = self._convert(self.fgraph, values)
        self._start_session(converted)
        return converted

    def jit_compile(self, fn: Any) -> Callable[..., list[Any] | None]:
        """Create the one ``InferenceSession`` of the function and return a runner for it.

        ``fn`` is the :class:`ConvertedGraph` made by :meth:`fgraph_convert`.  The runner takes
        the values of all ``FunctionGraph`` inputs (the thunk of :meth:`create_jitable_thunk`
        reads the storage cells itself).  With ``constant_shared``, the runner first checks that
        the frozen shared values are the objects the model was made from, and exports again if
        one was replaced.
        """
        if not fn.output_names:
            return _run_nothing
        assert self.fgraph is not None
        n_inputs = len(self.fgraph.inputs)
        runner = _make_runner(self._start_session(fn), fn, n_inputs)
        if not fn.frozen:
            return runner
        current = {"converted": fn, "runner": runner}

        def run_with_frozen_shared(*args: Any) -> list[Any]:
            converted: ConvertedGraph = current["converted"]
            if any(args[i] is not value for i, value in converted.frozen):
                converted = self._refreeze({i: args[i] for i, _ in converted.frozen})
                current["converted"] = converted
                current["runner"] = _make_runner(self.session, converted, n_inputs)
            return current["runner"](*args)

        return run_with_frozen_shared

    def create_jitable_thunk(
        self,
        compute_map: Any,
        order: Any,
        input_storage: Any,
        output_storage: Any,
        storage_map: dict[Variable, list[Any]],
    ) -> tuple[list[Callable[[], list[Any]]], list[Any], Callable[..., Any]]:
        """The one thunk of the function: run the session on the input cells.

        Overrides ``JITLinker.create_jitable_thunk`` (same contract) for a cheaper call: unless
        the graph has ``ScalarType`` or generator inputs or outputs (then the thunk calls the
        runner of :meth:`jit_compile`), the thunk builds the feeds from the storage cells and
        calls ONNX Runtime in one Python frame (:func:`_fast_thunk`).  Either thunk returns the
        outputs besides storing them, which spares ``Function.__call__`` collecting them from
        the cells.  Errors are re-raised with PyTensor's node information (``raise_with_op``), as
        ``JITLinker``'s thunk does.
        """
        fgraph = self.fgraph
        assert fgraph is not None
        converted = self.fgraph_convert(
            fgraph,
            order=order,
            input_storage=input_storage,
            output_storage=output_storage,
            storage_map=storage_map,
        )
        input_cells = self.create_thunk_inputs(storage_map)
        output_cells = [storage_map[var] for var in fgraph.outputs]
        runner = self.jit_compile(converted)
        # As in JITLinker: the error names the first output's node (the whole graph is one call).
        nodes = [var.owner for var in fgraph.outputs if var.owner is not None][:1]

        def on_error(thunk: Callable[[], list[Any]]) -> None:
            if nodes:
                raise_with_op(fgraph, nodes[0], thunk)

        def refreeze() -> tuple[SessionRun, FrozenCells]:
            new = self._refreeze({i: input_cells[i][0] for i, _ in converted.frozen})
            return session_run(self.session), _frozen_cells(new, input_cells)

        if self.session is not None and converted.plain:
            thunk = _fast_thunk(
                session_run(self.session), converted, input_cells, output_cells, on_error, refreeze
            )
        else:
            thunk = _general_thunk(runner, input_cells, output_cells, on_error)
        vars(thunk).update(inputs=input_cells, outputs=output_cells, lazy=False)
        return [thunk], nodes, runner

    def create_thunk_inputs(self, storage_map: dict[Variable, list[Any]]) -> list[Any]:
        """The storage cells of all ``FunctionGraph`` inputs, in order."""
        assert self.fgraph is not None
        return [storage_map[var] for var in self.fgraph.inputs]

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the session and model; unpickling a function compiles them anew."""
        state = dict(self.__dict__)
        state["session"] = None
        state["onnx_model"] = None
        return state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(providers={list(self.providers)!r}, opset={self.opset})"


def ONNXMode(
    providers: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
    session_options: Any = None,
    opset: int = DEFAULT_OPSET,
    check: bool = False,
    constant_shared: bool = False,
) -> Mode:
    """A PyTensor ``Mode`` that compiles functions to ONNX and runs them in ONNX Runtime.

    Parameters
    ----------
    providers
        ONNX Runtime execution providers in order of preference; default CPU.  CUDA and other
        providers need the matching onnxruntime build (untested by this project).
    session_options
        An ``onnxruntime.SessionOptions`` for every session the mode creates.
    opset
        The default-domain opset of the generated models.
    check
        Run the ONNX checker and strict shape inference at compile time.
    constant_shared
        Bake the values of shared variables that a function does not update into its model
        (faster calls; see :class:`ONNXLinker`).

    Returns
    -------
    pytensor.compile.mode.Mode
        Pass it as ``pytensor.function(..., mode=ONNXMode(...))``.  The rewrites are those of
        :func:`pytensor_onnx.export_onnx` (``pytensor_onnx.rewrite``).
    """
    linker = ONNXLinker(providers, session_options, opset, check, constant_shared)
    return Mode(linker=linker, optimizer=onnx_rewrite_query())


def _register() -> None:
    """Register the ``"ONNX"`` mode and the ``"onnx"`` linker name with PyTensor (once)."""
    if "ONNX" not in predefined_modes:
        register_mode("ONNX", ONNXMode())
    if "onnx" not in predefined_linkers:
        register_linker("onnx", ONNXLinker())


_register()

__all__ = ["DEFAULT_PROVIDERS", "ConvertedGraph", "ONNXLinker", "ONNXMode", "convert_fgraph"]
