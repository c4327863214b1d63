"""Export of the package's models (ONNX)."""
from .onnx import TensorForward, build_from_config, export_mode, export_onnx, onnx_errors

__all__ = ['TensorForward', 'build_from_config', 'export_mode', 'export_onnx', 'onnx_errors']
