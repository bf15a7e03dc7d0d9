"""Rao, Böhle, Schiele (CVPR 2022): GridPG, DiFull and DiPart grids, the localization score, AggAtt.

An ``n x n`` grid image holds one classifier-sized cell per position, cells numbered row-major from the
top-left (0) to the bottom-right (``n*n - 1``).

* **GridPG** — the whole grid through the classifier (fully convolutional models with global pooling;
  a Flatten + Dense head such as VGG16/19's slides over the grid's feature map as Rao et al.'s stride-1
  "classifier kernel" and the spatial logits are averaged, :mod:`.dense_head`; ``resize=True`` squeezes
  the grid to the input size of any other fixed-size model instead). Output (N, K); "class c at cell i"
  is target ``c`` (the cells hold distinct classes).
* **DiFull** — each cell through the whole classifier separately (the cells are stacked along the batch
  axis), one head per cell. Output (N, n*n*K) with index ``cell * K + class``: no cell can influence
  another cell's logits, so every gradient-based attribution outside the explained cell is exactly 0.
* **DiPart** — the whole grid through the trunk up to ``layer`` (``split_model``), the feature map cut
  into ``n x n`` cells, the rest of the classifier applied to each cell. Same output layout as DiFull.

Localization (supplement Eq. 2): ``L_i = sum_{p in cell i} A+(p) / sum_p A+(p)``, 0 when the total is
~0; chance is ``1/n^2``. Maps at a middle or final layer (Rao's layer-wise evaluation) explain the head
on the layer's activation, summed over channels and upsampled bilinearly to the grid. AggAtt (Sec. 3.2,
H.4): maps sorted by ``L_i`` (ties: positive mass inside the cell), mean positive map per percentile
bin, one colour scale per method. S-IntGrad / S-IxG: :func:`gaussian_smooth` (kernel size K as in the
supplement; its sigma is not given there, K/4 is our default).

Typical run: ``setting = build_setting(model, "difull")``, ``data = make_grid_dataset(model, images,
labels, "difull")``, ``result = evaluate_localization(setting, data, "ig", layer=None, keep_maps=True)``,
``aggatt(result.extras["maps"], data.cells, setting.n, cell=0)``.

Modules by job: ``layout`` (cells <-> grid: Keras layers, NumPy tiling, the output index), ``settings``
(the three grid models, Rao's layers), ``dense_head`` (GridPG's classifier kernel for dense heads), ``data``
(confident grid data sets), ``maps`` (layer-wise maps, smoothing), ``scores`` (the localization score, the
metric), ``aggatt`` (AggAtt and its figure).
"""
from .aggatt import AGGATT_EDGES, CLIP_PERCENTILE, AggAtt, aggatt, aggatt_figure, save_aggatt_png
from .data import CONFIDENCE, GridDataset, confident_indices, make_grid_dataset
from .dense_head import ClassifierKernel, DenseHead, dense_head, slide_head
from .layout import CellLogits, CellsToGrid, GridToCells, cell_and_class, grid_target, tile_cells
from .maps import RAO_REDUCE, REDUCE, gaussian_kernel, gaussian_smooth, layer_maps, upsample
from .scores import EPS, cell_masses, evaluate_localization, grid_localization, localization_scores
from .settings import PIXEL_RANGE, SETTINGS, GridSetting, at_input_shape, build_setting, rao_layers, spatial_layers

__all__ = ["AGGATT_EDGES", "CLIP_PERCENTILE", "CONFIDENCE", "EPS", "PIXEL_RANGE", "RAO_REDUCE", "REDUCE",
           "SETTINGS", "AggAtt", "CellLogits", "CellsToGrid", "ClassifierKernel", "DenseHead", "GridDataset",
           "GridSetting", "GridToCells", "aggatt", "aggatt_figure", "at_input_shape", "build_setting",
           "cell_and_class", "cell_masses", "confident_indices", "dense_head", "evaluate_localization",
           "gaussian_kernel", "gaussian_smooth", "grid_localization", "grid_target", "layer_maps",
           "localization_scores", "make_grid_dataset", "rao_layers", "save_aggatt_png", "slide_head",
           "spatial_layers", "tile_cells", "upsample"]
