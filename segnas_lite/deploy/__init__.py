"""Deployment on the CPU with OpenVINO: export, parity, the static-IR predictor, INT8."""
