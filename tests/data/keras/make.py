"""Write the Keras fixtures beside this file with Keras itself (not a test dependency).

    pip install --target /tmp/k keras namex optree ml-dtypes absl-py
    KERAS_BACKEND=torch PYTHONPATH=/tmp/k python tests/data/keras/make.py
"""

from pathlib import Path

import keras

HERE = Path(__file__).resolve().parent

keras.utils.set_random_seed(0)
inp = keras.Input((4,))
out = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8)(inp))
model = keras.Model(inp, out)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
model.save(HERE / "clean.keras")
model.save(HERE / "clean.h5")
lam = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2)])
lam.save(HERE / "lambda.keras")
