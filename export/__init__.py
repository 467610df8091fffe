"""Checkpoint -> ONNX export of the trained networks, and the torch-vs-ONNX Runtime checks.

Needs the ``train`` extra (torch, segmentation-models-pytorch, onnx, safetensors). The
runtime package (``angio_deploy``) never imports this folder.
"""
