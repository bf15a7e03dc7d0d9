"""Score-CAM (Wang et al. 2020): the weights are the softmax over channels of the scores of the image
masked by each upsampled, min-max normalised activation map; Faster-Score-CAM keeps the top_channels channels
of largest variance."""
import numpy as np
import tensorflow as tf

import tfxattr
from tests.methods.cam_reference import IMAGES, SIZE, TARGETS, cnn, layer_tensors, resized_cam
from tfxattr.methods.scorecam import ScoreCAM


def masked_scores(model, a, images, targets):
    """f_c(x * H_k) for every channel k, H_k = normalised bilinear upsampling of A_k (black = 0)."""
    out = np.zeros((len(images), a.shape[-1]))
    for k in range(a.shape[-1]):
        up = tf.image.resize(a[..., k:k + 1], (SIZE, SIZE), method="bilinear").numpy()
        lo, hi = up.min((1, 2, 3), keepdims=True), up.max((1, 2, 3), keepdims=True)
        logits = model(images * (up - lo) / (hi - lo)).numpy()
        out[:, k] = logits[np.arange(len(images)), targets]
    return out


def softmax(s):
    e = np.exp(s - s.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_weights_are_the_softmax_of_masked_input_scores():
    model = cnn()
    method = ScoreCAM(layer="c1")  # 6 channels of a tanh layer: some negative, all varying
    chain, a, _, _ = layer_tensors(method, model)
    expected = softmax(masked_scores(model, a.numpy(), IMAGES, TARGETS))
    w = np.asarray(method.channel_weights(tfxattr.as_model(model, batch_size=5), chain, a, IMAGES, TARGETS))
    np.testing.assert_allclose(w, expected, rtol=1e-4, atol=1e-7)
    e = tfxattr.explain(model, IMAGES, "scorecam", targets=TARGETS, layer="c1", batch_size=4)
    np.testing.assert_allclose(e.attribution, resized_cam(a, expected[:, None, None, :]), rtol=1e-4, atol=1e-6)


def test_faster_score_cam_scores_only_the_max_n_channels_of_largest_variance():
    model = cnn()
    method = ScoreCAM(layer="c1", top_channels=3)
    chain, a, _, _ = layer_tensors(method, model)
    w = np.asarray(method.channel_weights(tfxattr.as_model(model), chain, a, IMAGES, TARGETS))
    top = np.argsort(-a.numpy().var((1, 2)), axis=1)[:, :3]
    kept = np.take_along_axis(masked_scores(model, a.numpy(), IMAGES, TARGETS), top, 1)
    np.testing.assert_allclose(np.take_along_axis(w, top, 1), softmax(kept), rtol=1e-4, atol=1e-7)
    assert np.count_nonzero(w, axis=1).tolist() == [3, 3, 3]
