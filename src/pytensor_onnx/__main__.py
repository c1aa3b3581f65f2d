"""``python -m pytensor_onnx``: the ``pytensor-onnx`` command line."""

from pytensor_onnx.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
