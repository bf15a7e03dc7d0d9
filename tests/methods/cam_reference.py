"""What the CAM tests share: a small CNN cut at its last conv layer, its activations, gradients and scores."""
import keras
import numpy as np
import tensorflow as tf

import tfxattr

SIZE, CLASSES = 12, 4
IMAGES = np.random.default_rng(7).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
TARGETS = np.array([0, 2, 3], np.int32)


def cnn(hidden=None, seed=0, positive_class=None):
    """Rescaling -> conv "c1" (tanh) -> conv "c2" (relu) -> GAP -> [Dense(hidden, relu)] -> Dense logits.

    ``positive_class``: make that class's dense weights positive (a head whose gradient at "c2" is >= 0)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 3))
    h = keras.layers.Rescaling(1 / 255.0)(inp)
    h = keras.layers.Conv2D(6, 3, padding="same", activation="tanh", name="c1")(h)
    h = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c2")(h)
    h = keras.layers.GlobalAveragePooling2D(name="gap")(h)
    if hidden:
        h = keras.layers.Dense(hidden, activation="relu", name="hidden")(h)
    out = keras.layers.Dense(CLASSES, name="logits")(h)
    model = keras.Model(inp, out, name="cam_cnn")
    if positive_class is not None:
        kernel, bias = model.get_layer("logits").get_weights()
        kernel[:, positive_class] = np.abs(kernel[:, positive_class]) + 0.1
        model.get_layer("logits").set_weights([kernel, bias])
    return model


def layer_tensors(method, model, images=IMAGES, targets=TARGETS):
    """``(chain, A, df_c/dA, f_c)`` of ``method``'s layer on ``model``, computed with a GradientTape."""
    chain = method.chain(tfxattr.as_model(model))
    a = chain.stage(0, tf.constant(images))
    t = tf.constant(targets)
    with tf.GradientTape() as tape:
        tape.watch(a)
        f = chain.explained(a, t)
    return chain, a, tape.gradient(f, a), f


def resized_cam(a, weights, size=(SIZE, SIZE)):
    """``ReLU(sum_k w_k A_k)`` resized bilinearly, in NumPy + tf.image.resize (the tests' reference)."""
    m = np.maximum((np.asarray(weights) * np.asarray(a)).sum(-1, keepdims=True), 0)
    return tf.image.resize(m, size, method="bilinear").numpy()
