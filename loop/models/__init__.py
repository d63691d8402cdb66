"""The model layer: every causal LM the project loads, and every model artefact it reads.

- ``students``: students (and the ``hf:``/``smollm2`` teachers) by URI: ``hf:PATH_OR_ID``
  (a ``.gguf`` file too), ``smollm2``, ``model:ID``, ``scratch:tiny``; device and dtype
  choice; the safety options (:class:`~loop.models.students.LoadOptions`: safetensors
  only, ``trust_remote_code`` and pickles off unless asked).
- ``gguf``: the bundled SmolLM2 file and GGUF dequantization, cached once per machine.
- ``scratch``: the tiny from-scratch student trained on the corpus.
- ``memory``: the memory budget (what fits, micro-batch sizes for training and answering).
- ``merge``: trained model artefacts: the current one of a kind, loading with its adapter,
  checking its weights, merging for export.

Train, eval, export and the ``hf:`` teacher all load through here, so none of them imports
another stage's internals to get a model. Submodules are imported by name (torch loads
lazily inside them).
"""
