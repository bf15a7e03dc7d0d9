"""A TensorFlow Datasets split as data (``imagenet2012``, ``tfds:name``), read in order, chunk by chunk."""
from __future__ import annotations

import contextlib
import io
import os
import sys

import numpy as np

from .source import Chunk, Source, finished


class TfdsSource(Source):
    """A tensorflow-datasets split, read in order (``shuffle_files=False``); ids "index:file_name"."""

    def __init__(self, name, limit=None, split="validation", data_dir=None, manual_dir=None, download=True):
        import tensorflow_datasets as tfds

        manual_dir = manual_dir or os.path.join(data_dir or os.path.expanduser("~/tensorflow_datasets"),
                                                "downloads", "manual")
        said = io.StringIO()  # tfds prints "Downloading and preparing ..." on stdout, which is the results' channel
        try:
            with contextlib.redirect_stdout(said):
                ds, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True, download=download,
                                     shuffle_files=False, download_and_prepare_kwargs={
                                         "download_config": tfds.download.DownloadConfig(manual_dir=manual_dir)})
        except Exception as err:  # noqa: BLE001 - tfds raises many kinds; all mean "data not available"
            hint = (" For imagenet2012 download ILSVRC2012_img_val.tar (and ILSVRC2012_img_train.tar) from "
                    f"https://image-net.org by hand and put them in {manual_dir} (or pass --manual-dir)."
                    if name.startswith("imagenet") else "")
            raise ValueError(f"could not load tfds data set {name!r} split {split!r} (data_dir={data_dir}, "
                             f"manual_dir={manual_dir}): {type(err).__name__}: {err}.{hint}") from err
        sys.stderr.write(said.getvalue())  # it did download: what tfds said goes beside the progress bars
        features = info.features
        if "image" not in features:
            raise ValueError(f"tfds data set {name!r} has no 'image' feature (features: {sorted(features)})")
        self.name, self.ds = f"tfds:{name}/{split}", ds.take(limit) if limit else ds
        try:
            total = info.splits[split].num_examples
        except Exception:  # noqa: BLE001 - split arithmetic ("validation[:10%]") or a mocked info
            total = None
        self.size = min(limit, total) if limit and total else (limit or total)
        self.has_labels = "label" in features
        self.has_masks = "segmentation_mask" in features
        self.class_names = list(features["label"].names) if self.has_labels and hasattr(features["label"],
                                                                                          "names") else None

    def chunks(self, size):
        import tensorflow_datasets as tfds

        chunk = Chunk([], [], [] if self.has_labels else None, [] if self.has_masks else None)
        for i, ex in enumerate(tfds.as_numpy(self.ds)):
            fname = ex.get("file_name")
            chunk.ids.append(f"{i:07d}" + (f":{fname.decode()}" if isinstance(fname, bytes) and fname else ""))
            image = ex["image"]
            chunk.images.append(image if image.shape[-1] == 3 else np.repeat(image[..., :1], 3, -1))
            if self.has_labels:
                chunk.labels.append(int(ex["label"]))
            if self.has_masks:
                chunk.masks.append(np.asarray(ex["segmentation_mask"]).reshape(image.shape[:2]) > 0)
            if len(chunk.ids) == size:
                yield finished(chunk)
                chunk = Chunk([], [], [] if self.has_labels else None, [] if self.has_masks else None)
        if chunk.ids:
            yield finished(chunk)
