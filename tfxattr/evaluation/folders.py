"""Image folders as data: class subfolders (ImageNet wnids, integer names, or a model's class names,
:func:`label_map`) or a ``labels.csv`` (file, label[, mask]); files are read per chunk, and a file that
cannot be read is skipped with its reason."""
from __future__ import annotations

import csv
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..batching import spans
from ..inputs import class_index, read_image_file
from .source import Chunk, Source, as_uint8, finished

#: how many names an error about unmatched class folders lists before "..."
NAMES_SHOWN = 20
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class FolderSource(Source):
    """An image folder: class subfolders, or a ``labels.csv`` (file, label[, mask]); files read per chunk."""

    def __init__(self, root, limit=None):
        self.name, self.root = os.fspath(root), os.fspath(root)
        csv_path = os.path.join(root, "labels.csv")
        if os.path.isfile(csv_path):
            rows = _read_labels_csv(csv_path)
            files, labels = [r["file"] for r in rows], [int(r["label"]) for r in rows]
            masks = [r.get("mask") or None for r in rows]
            if any(masks) and not all(masks):
                raise ValueError(f"data {root!r}: labels.csv gives a mask for some images only")
            self.mask_files = masks if all(masks) else None
        else:
            classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
            if not classes:
                raise ValueError(f"data {root!r}: an image folder needs class subfolders or a labels.csv")
            index = _class_indices(classes)
            if index is None:  # named folders: sorted positions, which label_map renames to a model's classes
                index, self.label_names = {c: i for i, c in enumerate(classes)}, classes
            files, labels = [], []
            for c in classes:
                for f in sorted(os.listdir(os.path.join(root, c))):
                    if f.lower().endswith(IMAGE_EXTENSIONS):
                        files.append(os.path.join(c, f))
                        labels.append(index[c])
            self.mask_files, self.class_names = None, classes
        n = min(len(files), limit) if limit else len(files)
        if n == 0:
            raise ValueError(f"data {root!r}: no images found")
        missing = [f for f in files[:n] if not os.path.isfile(os.path.join(root, f))]
        if missing:
            raise ValueError(f"data {root!r}: {len(missing)} listed image(s) missing, e.g. {missing[0]!r}")
        self.files, self.labels = files[:n], np.array(labels[:n], np.int64)
        self.mask_files = None if self.mask_files is None else self.mask_files[:n]
        self.has_labels, self.has_masks, self.size = True, self.mask_files is not None, n

    def chunks(self, size):
        for span in spans(len(self.files), size):
            yield self._chunk(span)

    def chunk_at(self, index, size):
        return self._chunk(slice(index * size, min((index + 1) * size, len(self.files))))

    def _chunk(self, span: slice) -> Chunk:
        chunk = Chunk([], [], [], None if self.mask_files is None else [])
        for i in range(span.start, span.stop):
            path = os.path.join(self.root, self.files[i])
            try:  # one unreadable file is skipped with its reason; the run goes on
                image = as_uint8(read_image_file(path, 3), self.files[i])
                mask = None if self.mask_files is None else \
                    read_image_file(os.path.join(self.root, self.mask_files[i]), 1)[..., 0] > 0
            except ValueError as err:
                reason = str(err)  # "<path>: why"; the id already names the image file
                chunk.skipped[self.files[i]] = reason[len(path) + 2:] if reason.startswith(path + ": ") else reason
                continue
            chunk.ids.append(self.files[i])
            chunk.images.append(image)
            chunk.labels.append(self.labels[i])
            if mask is not None:
                chunk.masks.append(mask)
        return finished(chunk)


def _read_labels_csv(path) -> List[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"file", "label"} <= set(rows[0]):
        raise ValueError(f"{path}: labels.csv needs a header with columns 'file' and 'label' (and optional 'mask')")
    for r in rows:
        try:
            int(r["label"])
        except ValueError:
            raise ValueError(f"{path}: label {r['label']!r} of {r['file']!r} is not an integer class index") from None
    return rows


def _class_indices(classes: Sequence[str]) -> Optional[Dict[str, int]]:
    """Folder name -> class index for ImageNet wnids and integer names; None for other names."""
    import keras_apps

    wnids = {w: i for i, w in enumerate(keras_apps.wnids())}
    if all(c in wnids for c in classes):
        return {c: wnids[c] for c in classes}
    if all(c.isdigit() for c in classes):
        return {c: int(c) for c in classes}
    return None


def label_map(source: Source, class_names: Optional[Sequence[str]], model: str) -> Optional[np.ndarray]:
    """For a source whose labels are positions in ``source.label_names`` (class folders): the model's
    class index of each name (an array to index with the labels), or None when the labels need no map
    (already class indices, or a model without class names: sorted positions as they are). A folder
    name the model does not know raises ValueError listing the folders and the model's classes."""
    names = getattr(source, "label_names", None)
    if not names or not class_names:
        return None
    indices, unknown = [], []
    for name in names:
        try:
            indices.append(class_index(name, class_names, "class folder"))
        except ValueError:
            unknown.append(name)
    if unknown:
        shown = ", ".join(map(str, list(class_names)[:NAMES_SHOWN])) + (", ..." if len(class_names) > NAMES_SHOWN
                                                                         else "")
        raise ValueError(f"data {source.name!r}: class folder(s) {unknown} are not class names of model {model!r} "
                         f"(folders: {', '.join(names)}; model classes: {shown}); name the folders after the "
                         "model's classes (or their indices), or give a labels.csv with integer labels")
    return np.asarray(indices, np.int64)
