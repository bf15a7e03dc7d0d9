"""Splitting Keras models at named layers: the flattened layer graph and its split points (graph), the
block names a user may write (blocks), and running the split model for a layer method (chain)."""
from .blocks import BLOCKS, INPUT, default_blocks, resolve_layers, spatial_area
from .chain import LayerChain, input_spec, keras_model_of, layer_chain
from .graph import (
    LayerGraph,
    find_layer,
    layer_graph,
    leading_preprocessing,
    model_cache,
    split_model,
    valid_split_layers,
)

__all__ = ["BLOCKS", "INPUT", "default_blocks", "resolve_layers", "spatial_area", "LayerChain", "input_spec",
           "keras_model_of", "layer_chain", "LayerGraph", "find_layer", "layer_graph", "leading_preprocessing",
           "model_cache", "split_model", "valid_split_layers"]
