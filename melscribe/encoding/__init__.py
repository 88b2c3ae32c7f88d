"""Text models: the bi-encoder (:mod:`.encoder`) and its backends (torch, :mod:`.onnx_backend`,
:mod:`.static_backend`), loading model folders offline (:mod:`.models`), and the music cross-encoder that
re-ranks (:mod:`.reranker`). Shared by serving, training and evaluation."""
