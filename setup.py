from setuptools import find_packages, setup

setup(
    name="tfxattr",
    version="0.1.0",
    description="Batched, TF-native attribution (saliency) methods and metrics for Keras image classifiers",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tfxattr", "tfxattr.*", "keras_apps", "keras_apps.*"]),
    package_data={"tfxattr": ["assets/*"], "keras_apps": ["*.json", "*.txt"]},
    include_package_data=True,
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.0",
        "saliency>=0.2.1",
        "numpy>=1.26",
        "scipy>=1.10",
        "pillow>=10.0",
        "tensorflow-datasets>=4.9",
        "tqdm>=4.60",
        "threadpoolctl>=3.0",  # pins BLAS threads in scipy's Delaunay (SIC/AIC base image): 10x under load
    ],
    extras_require={"test": ["pytest>=7"]},
    entry_points={"console_scripts": ["tfxattr=tfxattr.cli:main"]},
)
