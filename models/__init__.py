"""The ONNX models the edge uses: a pinned manifest plus fetch-and-verify code."""
