"""Packaging for tf_enet: ENet semantic segmentation in TensorFlow 2 / Keras 3."""

from setuptools import find_packages, setup

setup(
    name="tf_enet",
    version="0.1.0",
    description=(
        "ENet (Paszke et al. 2016) for real-time semantic segmentation in "
        "TensorFlow 2 / Keras 3: training, evaluation, prediction and export."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    packages=find_packages(include=["tf_enet", "tf_enet.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.3,<3.16",
        "numpy>=1.26,<3",
        "opencv-python>=4.8,<5.1",
        "absl-py>=2.0,<3",
        "tensorboard>=2.16,<3",
    ],
    extras_require={
        "test": ["pytest>=8,<10", "tf2onnx>=1.17,<2", "onnxruntime>=1.20,<2"],
        "docs": ["matplotlib>=3.7,<4"],
        "onnx": ["tf2onnx>=1.17,<2", "onnxruntime>=1.20,<2"],
    },
)
