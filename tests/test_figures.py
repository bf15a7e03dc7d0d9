"""The labelled figures people look at: ``Explanation.save`` / ``plot`` and their titles (matplotlib)."""
import numpy as np
import pytest
from PIL import Image

from tfxattr import visualize
from tfxattr.explanation import Explanation
from tfxattr.methods import get_method
from tfxattr.methods.base import find_spec

# images of the hand-built explanations: small, so a figure enlarges them
SIZE = 24
# the title's text lies in the top 1/TITLE_BAND of a saved figure; text pixels are darker than DARK on a
# background lighter than LIGHT
TITLE_BAND = 10
DARK, LIGHT = 80, 240
# summed |RGB difference| under which an anti-aliased pixel counts as a curve's colour
NEAR = 40


def _explanation(n=1, method="ig+idgi", output="logit", **changed):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)
    attribution = rng.normal(size=(n, SIZE, SIZE, 3)).astype(np.float32)
    attribution[:, :8, :8] *= 20  # a bright corner: the map is not flat
    squeeze = (lambda a: a[0]) if n == 1 else (lambda a: a)
    return Explanation(attribution=squeeze(attribution), targets=squeeze(np.arange(n) % 2 + 1), method=method,
                       options={**find_spec(method).defaults, **changed}, run={"output": output},
                       images=squeeze(images), class_names=["disc", "triangle", "square"],
                       scores=squeeze(np.array([3.21, -0.5])[:n]), probabilities=squeeze(np.array([0.8741, 0.02])[:n]))


# -- titles -------------------------------------------------------------------------------------------
def test_title_names_the_method_its_changed_options_the_class_and_the_scores():
    exp = _explanation(steps=20, baseline="blur")
    assert exp.title() == ("ig+idgi:baseline=blur,steps=20\n"
                           "class triangle (1): logit 3.21, probability 0.874")
    # the registered name's own defaults (aggregator=idgi for ig+idgi) are not repeated
    assert _explanation().title().splitlines()[0] == "ig+idgi"


def test_title_of_a_probability_output_shows_the_probability_once():
    exp = _explanation(output="probability")
    exp.scores = exp.probabilities
    assert exp.title().splitlines()[1] == "class triangle (1): probability 0.874"
    assert visualize.score_line("7", 7, score=0.25, probability=None, output="probability") \
        == "class 7: probability 0.25"
    assert visualize.score_line("7", 7) == "class 7"  # an Explanation built without scores
    assert visualize.format_probability(0.99997) == ">0.999" and visualize.format_probability(1.0) == "1"
    assert visualize.format_probability(1.3e-9) == "1.3e-09"


def test_title_formats_options_as_specs():
    assert visualize.method_label("smooth", {"base": get_method("ig", steps=20), "samples": 8}) \
        == "smooth:base=(ig:steps=20),samples=8"
    assert visualize.format_value(("input", "block_3")) == "(input,block_3)"
    assert visualize.format_value(0.1 + 0.2) == "0.3"
    baseline = np.zeros((2, 2, 3))
    assert visualize.changed_options({"baseline": baseline, "steps": 9}, {"baseline": "black", "steps": 9}) \
        == {"baseline": baseline}
    assert visualize.changed_options({"baseline": baseline}, {"baseline": np.zeros((2, 2, 3))}) == {}
    long = visualize.figure_title("ig", {"layers": tuple(f"layer_{i}" for i in range(30))}, "cat", 3)
    assert max(len(line) for line in long.splitlines()) <= visualize.TITLE_CHARS


# -- figures ------------------------------------------------------------------------------------------
def test_plot_returns_a_figure_with_the_three_panels_and_a_colour_bar():
    from matplotlib.figure import Figure

    exp = _explanation()
    fig = exp.plot()
    assert isinstance(fig, Figure)
    assert [ax.get_label() for ax in fig.axes] == ["image", "heatmap", "overlay", "colorbar"]
    assert [ax.get_title() for ax in fig.axes[:3]] == ["image", "heatmap", "overlay"]
    assert fig.get_suptitle() == exp.title()
    heat = fig.axes[1].images[0]
    assert heat.colorbar is not None and heat.colorbar.ax is fig.axes[3]
    assert heat.get_clim() == pytest.approx(visualize.color_range(exp.map))
    assert "sum of |a| over channels" in heat.colorbar.ax.get_ylabel()
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(), exp.overlay())
    with pytest.raises(ValueError, match="no images"):
        Explanation(attribution=exp.attribution, targets=1, method="ig").plot()


def test_save_writes_labelled_rgb_pngs_with_index_suffixes(tmp_path):
    one = _explanation()
    (path,) = one.save(tmp_path / "one.png")
    img = Image.open(path)
    assert path == str(tmp_path / "one.png") and img.mode == "RGB"
    width, height = img.size
    assert width > 2.5 * height
    pixels = np.asarray(img)
    assert pixels.std() > 10  # not a blank picture
    title_band = pixels[:height // TITLE_BAND]
    assert (title_band < DARK).all(-1).sum() > 100 and (title_band > LIGHT).all(-1).mean() > 0.5  # text on white

    two = _explanation(n=2)
    written = two.save(tmp_path / "sub" / "two")
    assert written == [str(tmp_path / "sub" / "two_0.png"), str(tmp_path / "sub" / "two_1.png")]
    assert all(Image.open(p).mode == "RGB" for p in written)
    assert two.save(tmp_path / "pick.png", index=1) == [str(tmp_path / "pick.png")]
    (big,) = one.save(tmp_path / "big.png", scale=2)
    assert Image.open(big).size == (2 * width, 2 * height)
    with pytest.raises(ValueError, match="scale"):
        one.save(tmp_path / "x.png", scale=0)


def test_colours_of_the_overlay_are_the_colour_bar_s():
    from matplotlib import colormaps

    values = np.linspace(0, 1, 7)
    expected = (colormaps[visualize.CMAP](values)[:, :3] * 255).round()
    np.testing.assert_array_equal(visualize.colorize(values), expected)
    heat = np.array([[0.0, 1.0], [2.0, 100.0]], np.float32)
    low, high = visualize.color_range(heat, percentile=50)
    assert low == 0 and high == pytest.approx(1.5)
    np.testing.assert_allclose(visualize.normalize(heat, percentile=50), [[0, 2 / 3], [1, 1]], rtol=1e-6)
    assert visualize.color_range(np.zeros((3, 3))) == (0.0, 1.0)  # a flat map still has a scale
    assert visualize.color_range(np.full((2, 2), -2.0)) == (-2.0, -1.0)


def test_explain_fills_the_title_from_the_model(demo_data, tmp_path):
    import tfxattr
    from tfxattr.demo import DEMO_CLASS_NAMES

    exp = tfxattr.explain("demo", demo_data["images"][:1], "gradient", targets=2)  # the source names the classes
    title = exp.title()
    assert title.splitlines()[0] == "gradient"
    assert f"class {DEMO_CLASS_NAMES[2]} (2): logit {float(exp.scores[0]):.3g}" in title
    assert f"probability {visualize.format_probability(exp.probabilities[0])}" in title
    (path,) = exp.save(tmp_path / "demo.png")
    assert Image.open(path).mode == "RGB"


# -- report plots -------------------------------------------------------------------------------------
def test_line_plot_draws_a_lone_value_and_keeps_its_size(tmp_path):
    from tfxattr.evaluation.plots import PALETTE, PLOT_SIZE, line_plot

    x = np.linspace(0, 1, 5)
    lone = np.array([np.nan, np.nan, 0.5, np.nan, np.nan])  # no segment to draw: a dot instead
    path = line_plot([("only", x, lone)], tmp_path / "lone.png", title="t", xlabel="x", ylabel="y")
    img = Image.open(path)
    assert img.mode == "RGB" and img.size == PLOT_SIZE
    plot_area = np.asarray(img)[:, : PLOT_SIZE[0] * 2 // 3]  # left of the legend, whose line has the colour too
    assert (np.abs(plot_area.astype(int) - PALETTE[0]).sum(-1) < NEAR).sum() > 10  # the dot, anti-aliased


# -- comparison figures (tfxattr.plot) ----------------------------------------------------------------
def _signed_single_channel(n=2):
    """An Explanation of the same images as ``_explanation(n)`` whose one-channel map is signed (IIA-like)."""
    base = _explanation(n=n)
    attribution = np.random.default_rng(1).normal(size=(n, SIZE, SIZE, 1)).astype(np.float32)
    return Explanation(attribution=attribution, targets=base.targets, method="iia2", options={},
                       run={"output": "logit"}, images=base.images, class_names=base.class_names,
                       scores=base.scores, probabilities=base.probabilities)


def test_plot_of_several_explanations_is_one_grid_of_methods_by_images(tmp_path):
    import tfxattr
    from tfxattr import figures

    exps = [_explanation(n=2), _explanation(n=2, method="gradient"), _signed_single_channel()]
    fig = tfxattr.plot(exps, tmp_path / "cmp.png", image_names=["cat.png", "dog.png"])
    assert (tmp_path / "cmp.png").is_file() and Image.open(tmp_path / "cmp.png").mode == "RGB"
    labels = [ax.get_label() for ax in fig.axes]
    assert labels.count("image") == 2 and labels.count("map") == 3 * 2 and labels.count("colorbar") == 3
    maps = [ax for ax in fig.axes if ax.get_label() == "map"]
    titles = [ax.get_title() for ax in maps]
    for row, method in enumerate(["ig+idgi", "gradient", "iia2"]):  # rows are methods, columns images
        assert all(t.startswith(method + "\n") for t in titles[2 * row: 2 * row + 2]), titles
    assert "triangle: logit 3.21, p 0.874" in titles[0] and "square: logit -0.5, p 0.02" in titles[1]
    assert [ax.get_title() for ax in fig.axes if ax.get_label() == "image"] == ["cat.png", "dog.png"]
    # |a| summed over channels: sequential from 0; the signed one-channel map: diverging, centred at 0
    assert maps[0].images[0].get_cmap().name == figures.SEQUENTIAL_CMAP and maps[0].images[0].get_clim()[0] == 0
    low, high = maps[4].images[0].get_clim()
    assert maps[4].images[0].get_cmap().name == figures.DIVERGING_CMAP and low == pytest.approx(-high) and high > 0
    assert maps[4].images[0].get_clim() == maps[5].images[0].get_clim()  # one scale per row (its colour bar)
    assert "row's own scale" in fig.get_supxlabel()


def test_a_non_negative_map_of_a_signed_reduction_is_drawn_sequential():
    from tfxattr import figures

    cmap, low, high = figures.row_colors(np.array([[[0.0, 1.0], [2.0, 3.0]]]), "sum")
    assert cmap == figures.SEQUENTIAL_CMAP and low == 0 and high > 0
    cmap, low, high = figures.row_colors(np.array([[[-4.0, 1.0], [2.0, 3.0]]]), "sum")
    assert cmap == figures.DIVERGING_CMAP and low == -high and high == pytest.approx(np.percentile([4, 1, 2, 3], 99))
    assert figures.row_colors(np.array([[[-4.0, 1.0]]]), "sum_abs")[0] == figures.SEQUENTIAL_CMAP


def test_plot_refuses_what_it_cannot_compare(tmp_path):
    from tfxattr import figures

    one = _explanation(n=2)
    other = _explanation(n=2)
    other.images = other.images + 1
    with pytest.raises(ValueError, match=r"explanations\[1\].*other images"):
        figures.plot([one, other])
    with pytest.raises(ValueError, match=r"explanations\[0\].*no images"):
        figures.plot([Explanation(attribution=one.attribution, targets=one.targets, method="ig")])
    with pytest.raises(ValueError, match="image_names: 1 names for 2 images"):
        figures.plot([one], image_names=["a"])
    with pytest.raises(TypeError, match="explanations"):
        figures.plot([])
    with pytest.raises(ValueError, match="path.*.gif"):
        figures.plot([one], tmp_path / "x.gif")
    assert len(figures.plot(one).axes) == 2 + 2 + 1  # one Explanation alone: its images and maps, one bar
