"""nnref.viz: the grids of pictures TensorBoard shows (templates, filters, mistakes, neighbours)."""

from __future__ import annotations

import numpy as np
import torch

from nnref import viz


def _boxes(fig):
    (ax,) = fig.axes  # one Axes for the whole grid
    return ax, [im.get_extent() for im in ax.get_images()]


def test_each_template_has_its_own_symmetric_colour_scale_and_title():
    w = torch.randn(10, 784) * torch.arange(1, 11).unsqueeze(1)
    fig = viz.weight_templates(w, [str(i) for i in range(10)], suptitle="learned templates")
    ax, boxes = _boxes(fig)
    images = ax.get_images()
    assert len(images) == 10 and [t.get_text() for t in ax.texts] == [str(i) for i in range(10)]
    for i, im in enumerate(images):
        lim = float(w[i].abs().max())
        assert im.norm.vmin == -lim and im.norm.vmax == lim and im.get_cmap().name == "RdBu_r"
        np.testing.assert_array_equal(im.get_array(), w[i].reshape(28, 28).numpy())
    assert fig._suptitle.get_text() == "learned templates"


def test_tiles_sit_in_their_own_cells_row_by_row():
    fig = viz.weight_templates(torch.randn(64, 784))  # a layer's filters: 7 rows of up to 10
    _, boxes = _boxes(fig)
    assert len(boxes) == 64
    lefts, tops = sorted({round(b[0], 6) for b in boxes}), sorted({round(b[3], 6) for b in boxes})
    assert len(lefts) == 10 and len(tops) == 7
    for a in range(len(boxes)):  # no two pictures overlap
        for b in range(a + 1, len(boxes)):
            (l1, r1, b1, t1), (l2, r2, b2, t2) = boxes[a], boxes[b]
            assert r1 <= l2 or r2 <= l1 or b1 <= t2 or b2 <= t1
    # the grid reads left to right, then down: picture 10 starts the second row
    assert boxes[10][0] == boxes[0][0] and boxes[10][3] > boxes[0][3]
    width, height = fig.get_size_inches()
    assert all(0 <= left and r <= width and 0 <= t and b <= height for left, r, b, t in boxes)


def test_misclassified_grid_shows_only_the_mistakes_titled_true_to_predicted():
    images = torch.arange(6 * 784, dtype=torch.float32).reshape(6, 28, 28) % 255
    labels, preds = torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([0, 7, 2, 9, 4, 1])
    fig = viz.misclassified_grid(images, labels, preds)
    ax, _ = _boxes(fig)
    assert [t.get_text() for t in ax.texts] == ["1 → 7", "3 → 9", "5 → 1"]
    assert all(t.get_color() == "crimson" for t in ax.texts)
    np.testing.assert_array_equal(ax.get_images()[1].get_array(), images[3].numpy())
    assert "first 3" in fig._suptitle.get_text()


def test_neighbours_grid_marks_a_wrong_vote_and_labels_each_neighbour():
    q, n = torch.rand(2, 28, 28), torch.rand(2, 3, 28, 28)
    fig = viz.neighbours_grid(q, torch.tensor([4, 5]), n, torch.tensor([[4, 4, 1], [3, 3, 5]]), torch.tensor([4, 3]))
    ax, boxes = _boxes(fig)
    texts = ax.texts
    assert len(boxes) == 8
    assert [t.get_text() for t in texts] == [
        "test 4 → 4",
        "#1: 4",
        "#2: 4",
        "#3: 1",
        "test 5 → 3",
        "#1: 3",
        "#2: 3",
        "#3: 5",
    ]
    assert texts[0].get_color() == "black" and texts[4].get_color() == "crimson"


def test_a_grid_renders_its_pictures(tmp_path):
    w = torch.zeros(2, 784)
    w[0, :] = 1.0  # all red
    w[1, :] = -1.0  # all blue
    fig = viz.weight_templates(w, ["a", "b"])
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    (ax,) = fig.axes
    # the centre of each picture, in pixels (the figure's y axis points up; the data's points down)
    centres = [ax.transData.transform(((x0 + x1) / 2, (b + t) / 2)) for x0, x1, b, t in _boxes(fig)[1]]
    h = rgb.shape[0]
    red, blue = (rgb[h - int(y), int(x)] for x, y in centres)
    assert red[0] > red[2] + 50 and blue[2] > blue[0] + 50  # RdBu_r: +max dark red, -max dark blue
    viz.save_figure(fig, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 0
