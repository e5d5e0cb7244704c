"""Stage 2, the models: embedders (sentence-transformers, ONNX, numpy MiniLM), the cross-encoder, multilingual-e5."""
