"""Pooled-statistics features of every image, computed once and kept outside the work tree.

Why: on a 2-core CPU the frozen trunk's forward pass is the whole cost of the
feature model (about 35 ms an image at 512 px through onnxruntime, three times
faster than PyTorch eager); the ridge and reasons heads fit in seconds. Caching
the features makes relabelling, refitting and ablations cost seconds, and lets
a fresh work tree on the same machine reuse the work of earlier sessions.

Layout: ``<cache root>/features/<key>/`` holds ``trunk.onnx`` (the exporter of
the features), ``chunk-*.npy`` (fp16, memory-mapped on read) and ``index.jsonl``
(one line per finished chunk: its file and the image ids it holds). ``key``
hashes backbone, stages, weights and the contract's pixel fields
(``pooled_stats.features_key``), so a changed contract or backbone never reads
stale features. An image's id is the project's one rule, ``identity.image_id``:
the SHA-1 of its bytes (memoised by path, size and mtime), so an edited file is
recomputed and the same photos laid out anew are not. A chunk is written whole
before its index line, so an interrupted run resumes at the last finished chunk.

Transition from the old ids: before issue 33 an id hashed the resolved path,
size and mtime (``legacy_image_id``), and the caches on this machine hold hours
of rows under those. When a content id misses, ``ids_for`` looks up the old id
of the same path (its stat unchanged, so the row is what the old code would
serve), serves that row and appends an alias line ``{"file": chunk, "ids": [],
"aliases": {content id: row}}``, which the next run reads as a direct hit. An
older reader sees an alias line as a chunk of no images and ignores it, so the
same folder serves old and new code. The legacy look-up can go once the caches
in use have been read through once (or rebuilt).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cachedir import cache_root
from ..fileio import written_in_place
from ..identity import image_ids

CHUNK = 128


def legacy_image_id(path: str | Path) -> str:
    """The id rows were stored under before content ids (the module docstring's transition): read, never written."""
    p = Path(path).resolve()
    st = p.stat()
    return hashlib.sha1(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:20]


def _index_entry(line: str) -> dict | None:
    """One index line, or None when it is cut by an interruption (its chunk is recomputed) or damaged."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(entry, dict):
        return None
    ids, aliases = entry.get("ids", []), entry.get("aliases", {})
    seconds = entry.get("seconds")
    ok = (isinstance(entry.get("file"), str) and isinstance(ids, list) and all(isinstance(i, str) for i in ids)
          and isinstance(aliases, dict) and all(type(row) is int and row >= 0 for row in aliases.values())
          and (seconds is None or (isinstance(seconds, (int, float)) and not isinstance(seconds, bool))))
    return entry if ok else None


@dataclass
class FeatureCache:
    folder: Path
    computed: int = 0                     # images whose features this object computed (not read back)
    aliased: int = 0                      # images this object found under their legacy id (the transition)
    build_seconds: float = 0.0            # compute time of every chunk in the folder, over all runs
    _index: dict[str, tuple[str, int]] = field(default_factory=dict)
    _maps: dict[str, np.ndarray] = field(default_factory=dict)   # open memory maps, one per chunk

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        index = self.folder / "index.jsonl"
        if index.exists():
            for entry in filter(None, map(_index_entry, index.read_text().splitlines())):
                if (self.folder / entry["file"]).exists():
                    for row, item in enumerate(entry.get("ids", [])):
                        self._index[item] = (entry["file"], row)
                    for item, row in entry.get("aliases", {}).items():
                        self._index[item] = (entry["file"], row)
                    self.build_seconds += entry.get("seconds") or 0.0

    def __len__(self) -> int:
        """Rows held: an aliased row is one image under two ids."""
        return len(set(self._index.values()))

    def missing(self, ids: list[str]) -> list[int]:
        return [i for i, item in enumerate(ids) if item not in self._index]

    def ids_for(self, paths: list[Path]) -> list[str]:
        """The content ids of ``paths``; one this cache lacks but holds under the path's legacy id is aliased
        to that row, in memory and in one appended index line per chunk."""
        ids = image_ids(paths)
        aliases: dict[str, dict[str, int]] = {}
        for path, item in zip(paths, ids):
            if item not in self._index and (old := self._index.get(legacy_image_id(path))):
                self._index[item] = old
                aliases.setdefault(old[0], {})[item] = old[1]
        if aliases:
            self._append_index([{"file": name, "ids": [], "aliases": rows} for name, rows in aliases.items()])
            self.aliased += sum(map(len, aliases.values()))
        return ids

    def _append_index(self, entries: list[dict]) -> None:
        with open(self.folder / "index.jsonl", "a") as fh:
            fh.write("".join(json.dumps(entry) + "\n" for entry in entries))

    def add_chunk(self, ids: list[str], features: np.ndarray, seconds: float | None = None) -> None:
        name = f"chunk-{hashlib.sha1(''.join(ids).encode()).hexdigest()[:16]}.npy"
        with written_in_place(self.folder / name) as tmp, open(tmp, "wb") as fh:
            np.save(fh, features.astype(np.float16))
        self._append_index([{"file": name, "ids": ids, "seconds": seconds}])
        for row, item in enumerate(ids):
            self._index[item] = (name, row)
        self.computed += len(ids)
        self.build_seconds += seconds or 0.0

    def read(self, ids: list[str]) -> np.ndarray:
        rows = []
        for item in ids:
            name, row = self._index[item]
            if name not in self._maps:
                self._maps[name] = np.load(self.folder / name, mmap_mode="r")
            rows.append(np.asarray(self._maps[name][row], dtype=np.float32))
        return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


def trunk_session(trunk, contract, folder: Path, threads: int = 2):
    """An onnxruntime session of the feature trunk (exported once into the cache folder)."""
    import onnxruntime as ort
    import torch

    path = Path(folder) / "trunk.onnx"
    if not path.exists():
        x = torch.zeros(1, 3, contract.input_size, contract.input_size)
        with written_in_place(path) as tmp:
            torch.onnx.export(trunk.eval(), x, str(tmp), opset_version=17, dynamo=False, input_names=["input"],
                              output_names=["features"], dynamic_axes={"input": {0: "n"}, "features": {0: "n"}})
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def pooled_features(paths: list[Path], trunk, contract, key: str, *, root: Path | None = None,
                    progress: bool = True, desc: str = "features") -> tuple[np.ndarray, FeatureCache]:
    """Features of ``paths`` (N x F, float32), computing only what the cache lacks; the cache object says
    how many were computed. Images that fail to decode raise: the loaders already skipped bad rows."""
    cache = cached_outputs(paths, trunk, contract, key, kind="features", root=root, progress=progress, desc=desc)
    return cache.read(cache.ids_for(paths)), cache


def cached_outputs(paths: list[Path], trunk, contract, key: str, *, kind: str, root: Path | None = None,
                   progress: bool = True, desc: str = "features") -> FeatureCache:
    """The cache ``<root>/<kind>/<key>`` holding ``trunk``'s output for every one of ``paths`` (pooled
    features, or a stage's activations), after computing what it lacked."""
    cache = FeatureCache((root or cache_root()) / kind / key)

    def trunk_rows():
        session = trunk_session(trunk, contract, cache.folder)
        return lambda tensor: session.run(None, {"input": tensor})[0][0]

    return fill_cache(cache, paths, trunk_rows, contract, "NCHW", progress=progress, desc=desc)


def fill_cache(cache: FeatureCache, paths: list[Path], make_compute, contract, layout: str, *,
               progress: bool = True, desc: str = "features") -> FeatureCache:
    """``cache`` after computing the rows it lacks of ``paths``: ``make_compute()`` gives the function that
    maps one preprocessed image (batch of one, in ``layout``) to its row, built only when a row is missing
    (loading a model costs seconds a fully cached run need not pay); chunk by chunk, so an interrupted run
    resumes."""
    from tqdm import tqdm

    from ..sdk.preprocess import preprocess

    ids = cache.ids_for(paths)
    todo = cache.missing(ids)
    compute = make_compute() if todo else None
    with tqdm(total=len(todo), desc=desc, unit="img", disable=not (progress and todo) or None) as bar:
        for start in range(0, len(todo), CHUNK):
            part, t0 = todo[start:start + CHUNK], time.perf_counter()
            rows = []
            for i in part:
                tensor = preprocess(paths[i], contract, layout=layout)
                rows.append(compute(tensor.reshape(1, *tensor.shape[-3:])))
                bar.update()
            cache.add_chunk([ids[i] for i in part], np.stack(rows), time.perf_counter() - t0)
    return cache
