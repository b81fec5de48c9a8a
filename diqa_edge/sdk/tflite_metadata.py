"""Read and write the manifest inside a .tflite file (the flatbuffer's ``metadata`` list).

Why inside the file too: a sidecar JSON can be separated from its model in an
app bundle; the copy in the flatbuffer cannot. Uses the schema module that
ships with ai-edge-litert, so the SDK needs no tensorflow to read it.
"""

from __future__ import annotations

from pathlib import Path

from .manifest import MANIFEST_KEY


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def read_tflite_metadata(path: str | Path, key: str = MANIFEST_KEY) -> str | None:
    schema = _schema()
    buf = Path(path).read_bytes()
    model = schema.Model.GetRootAsModel(buf, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name() and entry.Name().decode() == key:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return bytes(data).decode("utf-8")
    return None


def embed_tflite_metadata(model_bytes: bytes, text: str, key: str = MANIFEST_KEY) -> bytes:
    """A copy of the flatbuffer with ``key`` -> ``text`` in its metadata (replacing an old entry)."""
    import numpy as np

    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_bytes, 0))
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    name_of = lambda m: m.name.decode() if isinstance(m.name, bytes) else m.name  # noqa: E731
    old = [m for m in (model.metadata or []) if name_of(m) == key]
    if old:      # the entry's own buffer takes the new text (appending would leave the old one in the file)
        model.buffers[old[0].buffer].data = data
        return _packed(model, len(model_bytes) + len(text))
    buffer = schema.BufferT()
    buffer.data = data
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = key
    entry.buffer = len(model.buffers) - 1
    model.metadata = list(model.metadata or []) + [entry]
    return _packed(model, len(model_bytes) + len(text))


def _packed(model, size_hint: int) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
