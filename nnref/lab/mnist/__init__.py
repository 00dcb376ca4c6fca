"""The lab's ``/mnist`` page: softmax regression (or an MLP) trained live on MNIST by nnref's Functions, with the
ten templates of W, a gallery of test digits, the confusion matrix, the numbers of every layer, one digit's
forward and backward pass, and an export to an nnref checkpoint.

What is where: :mod:`.state` (the page's state, defined once, and every message checked against it),
:mod:`.dataset` (MNIST decoded once per server, shared read-only by every page), :mod:`.watch` (what the page
watches of a model: validation loss, accuracy, confusion, the gallery's top three, each layer's numbers, the
templates), :mod:`.digit` (one digit's forward pass and dL/dx), :mod:`.session` (one page's training),
:mod:`.checkpoint` (the page's model as an nnref checkpoint), :mod:`.turns` (the server's pages take turns on one
trainer thread) and :mod:`.socket` (the page's WebSocket).
"""
