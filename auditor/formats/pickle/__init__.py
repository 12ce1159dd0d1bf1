"""The pickle family: the symbolic pickle machine, its opcodes and import tiers, and the
layouts that wrap pickles (PyTorch zip, legacy and tar checkpoints, NumPy, joblib)."""
