"""Weight formats that are not pickles: safetensors, GGUF, ONNX, TFLite, Flax msgpack,
HDF5/Keras and TensorFlow SavedModel (binary and text protobuf)."""
