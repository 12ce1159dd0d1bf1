"""Archives: zip, tar and compressed streams read as their loaders read them; every member goes
back to the engine, under the layout (PyTorch, npz, generic) its member names reveal."""
