"""Write docs/supported_ops.md from the converter registry (``--check`` to verify it is current).

The table is generated in the newest supported environment; Op classes that only some
PyTensor versions define are registered through ``optional_classes`` and listed too.
``--check`` works with any supported PyTensor: module paths of Op classes differ between
versions, so it compares class names.  It fails when a class registered in this environment
is missing from the table, or when the table lists a class that is neither registered here
nor registered by name for other versions (a removed converter).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytensor
from pytensor.graph.op import Op

import pytensor_onnx.dispatch as dispatch
from pytensor_onnx.dispatch.basic import (
    LAZY_REFUSALS,
    OPTIONAL_OP_CLASSES,
    Refusal,
    onnx_funcify,
)
from pytensor_onnx.dispatch.blockwise import onnx_funcify_blockwise

TARGET = Path(__file__).resolve().parent.parent / "docs" / "supported_ops.md"

#: Subpackages of PyTensor whose Ops are not graph operations a user exports (other
#: backends, sparse and xtensor types, debugging printers, compilation machinery).
_SKIPPED_PACKAGES = (
    "compile",
    "d3viz",
    "gradient",
    "ipython",
    "link",
    "misc",
    "printing",
    "sandbox",
    "sparse",
    "tests",
    "typed_list",
    "xtensor",
)
#: Base classes that never appear in a graph themselves (their subclasses do), besides the
#: abstract ones.
_BASE_CLASSES = {
    "AbstractRNGConstructor",
    "BinaryBitOp",
    "BinaryScalarOp",
    "FixedLogicalComparison",
    "LogicalComparison",
    "Output",
    "RandomVariable",
    "ScalarInnerGraphOp",
    "ScalarOp",
    "SolveBase",
    "UnaryBitOp",
    "UnaryScalarOp",
    "_NoPythonOp",
}
#: Why Op classes without a converter of their own still export, or cannot.
_WITHOUT_CONVERTER = {
    "JoinDims": "rewritten into `Reshape` by PyTensor before conversion",
    "SplitDims": "rewritten into `Reshape` by PyTensor before conversion",
    "SpecifyAssumptions": "removed by PyTensor's rewrites before conversion (its facts "
    "select specialized ops, e.g. a diagonal solve)",
    "Dot22Scalar": "a BLAS op of the C backend's rewrites; the ONNX rewrite set never creates it",
    "MulWithoutZeros": "exported as the reduction it serves, `ProdWithoutZeros` "
    "(gradient of `prod`; see `elemwise`)",
    "PdbBreakpoint": "a debugging breakpoint; an exported model cannot stop in pdb",
    "TRSYL": "used only inside `SolveSylvester`, which is exported as a whole (one Kronecker-"
    "product linear system; see docs/linalg.md)",
}


def _module_summary(module_name: str) -> str:
    doc = importlib.import_module(module_name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _registered() -> tuple[dict[str, set[tuple[str, str]]], dict[str, str]]:
    """Converted Op classes by converter module (with their kind), and refused ones."""
    sections: dict[str, set[tuple[str, str]]] = defaultdict(set)
    refused = {f"{module}.{name}": reason for (module, name), reason in LAZY_REFUSALS.items()}
    for registry, kind in ((onnx_funcify, "op"), (onnx_funcify_blockwise, "Blockwise core op")):
        for cls, func in registry.registry.items():
            if cls is object:
                continue
            name = f"{cls.__module__}.{cls.__qualname__}"
            if isinstance(func, Refusal):
                refused[name] = func.reason
            else:
                sections[func.__module__].add((name, kind))
    return sections, refused


def _optional() -> list[str]:
    """The Op classes registered by name, for the PyTensor versions (or PyMC) defining them."""
    return sorted({f"{module}.{name}" for module, name in OPTIONAL_OP_CLASSES})


def _without_converter() -> dict[str, str]:
    """The Op classes of the installed PyTensor with neither converter nor refusal, with
    the reason they still export (or ``no converter yet``)."""
    classes: dict[str, type] = {}
    for info in pkgutil.walk_packages(pytensor.__path__, "pytensor."):
        if any(f".{part}" in info.name for part in _SKIPPED_PACKAGES):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            continue
        for cls in vars(module).values():
            if (
                inspect.isclass(cls)
                and issubclass(cls, Op)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
                and cls.__name__ not in _BASE_CLASSES
            ):
                classes[f"{cls.__module__}.{cls.__qualname__}"] = cls
    fallback = onnx_funcify.dispatch(object)
    return {
        name: _WITHOUT_CONVERTER.get(cls.__name__, "no converter yet")
        for name, cls in sorted(classes.items())
        if onnx_funcify.dispatch(cls) is fallback
    }


def render() -> str:
    """The Markdown text of the supported-op table."""
    sections, refused = _registered()
    lines = [
        "# Supported PyTensor Ops",
        "",
        "Generated by `python scripts/gen_op_table.py` from the converter registry "
        "(newest supported PyTensor); a test keeps it current. `Elemwise` nodes are "
        "converted through their scalar op, so a scalar op listed here works elementwise on "
        "tensors and inside fused `Composite` graphs. Any `OpFromGraph` (including PyTensor 3's "
        "symbolic ops) whose inner graph uses listed ops is converted too.",
        "",
    ]
    for module in sorted(sections):
        short = module.removeprefix("pytensor_onnx.dispatch.")
        lines += [
            f"## `{short}`",
            "",
            _module_summary(module),
            "",
            "| PyTensor Op | kind |",
            "|---|---|",
        ]
        lines += [f"| `{name}` | {kind} |" for name, kind in sorted(sections[module])]
        lines.append("")
    if refused:
        lines += [
            "## Refused with a reason",
            "",
            "Export stops with an `UnsupportedOpError` that gives this reason (core Op and "
            "`Blockwise` alike):",
            "",
            "| PyTensor Op | reason |",
            "|---|---|",
        ]
        lines += [f"| `{name}` | {reason} |" for name, reason in sorted(refused.items())]
        lines.append("")
    lines += [
        "## Registered by name",
        "",
        "Op classes that only some PyTensor versions define (or that PyMC defines), converted "
        "where they exist:",
        "",
    ]
    lines += [f"- `{name}`" for name in _optional()]
    lines += [
        "",
        _WITHOUT_HEADING,
        "",
        "Every other Op class that PyTensor defines (outside its sparse, xtensor and backend "
        "packages) and has neither a converter nor a refusal: export stops with an "
        "`UnsupportedOpError` naming it, unless the reason below says PyTensor's rewrites "
        "remove it first.",
        "",
        "| PyTensor Op | status |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {reason} |" for name, reason in _without_converter().items()]
    lines.append("")
    return "\n".join(lines)


_WITHOUT_HEADING = "## Without a converter"


def _class_name(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _class_names(text: str) -> set[str]:
    return {_class_name(m) for m in re.findall(r"`([\w.]+\.[A-Z_]\w*)`", text)}


def check(text: str) -> list[str]:
    """Problems of the table ``text`` against this environment's registry (none: current).

    The last section (Op classes without converter) is written from the newest PyTensor
    and not compared with older ones; it must only not list a class registered here.
    """
    supported, _, without = text.partition(_WITHOUT_HEADING)
    listed = _class_names(supported)
    sections, refused = _registered()
    here = {_class_name(name) for rows in sections.values() for name, _ in rows}
    here |= {_class_name(name) for name in refused}
    by_name = {_class_name(name) for name in _optional()}
    problems = [f"{name} is registered but not in the table" for name in sorted(here - listed)]
    problems += [
        f"{name} is in the table but has no converter or refusal"
        for name in sorted(listed - here - by_name)
    ]
    problems += [
        f"{name} is listed without a converter but has one"
        for name in sorted(_class_names(without) & here)
    ]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is not current")
    parser.add_argument("--table", type=Path, default=TARGET, help="the file to write or check")
    args = parser.parse_args()
    assert dispatch  # importing the package registers every converter
    if args.check:
        table = args.table
        problems = check(table.read_text()) if table.exists() else [f"{table} is missing"]
        if problems:
            print(
                f"{table} is out of date (run python scripts/gen_op_table.py in the newest "
                "environment):\n  " + "\n  ".join(problems),
                file=sys.stderr,
            )
            return 1
        return 0
    args.table.write_text(render())
    print(f"wrote {args.table}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
