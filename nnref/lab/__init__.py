"""``nnref lab``: the lecture's demos, live in the browser — TensorFlow Playground's experience trained by nnref's
own Functions (:mod:`nnref.lab.session`), and a draw-a-digit page that shows a model's forward and backward pass
on your digit (:mod:`nnref.lab.digits`), served by :mod:`nnref.lab.server`."""

from .server import LabServer, create_app, serve

__all__ = ["LabServer", "create_app", "serve"]
