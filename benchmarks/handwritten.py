"""The best plain NumPy backpropagation we can write by hand: the baseline the generated code is timed against.

Vectorised over the batch (rows are examples), every intermediate preallocated once per batch
size and written with ``out=``, activations applied in place, the output delta fused
(softmax + cross-entropy and sigmoid + binary cross-entropy give a − y; identity + squared error
gives 2(a − y)), the batch mean's 1/N folded into that delta. Gradients are of the batch-mean
loss, each in its parameter's shape, like ``Network.compile().gradients``.

What else makes it fast on small arrays, where a NumPy call costs ~1 µs whatever it computes:
number operands are 0-d arrays of the dtype (a ufunc converts a Python number on every call),
2-D products are ``np.dot`` (less dispatch than ``np.matmul``), sums over the examples are
products with a ones vector (NumPy's reduction over the first axis of a (32, 32) array is ~3x
slower), and a row maximum is taken along the columns of a transposed copy. ``sgd_step`` also
folds the learning rate into the output delta (every gradient is linear in it), so the update is
one subtraction per parameter, and it does not compute the loss — as the hand-written NumPy peer
of the independent benchmark harness (``../shared/bench``, ``benchlib/peers/numpy_hand.py``)
does not; its operations are the same as that peer's, so it is at least as fast.

Hidden activations: relu, tanh, sigmoid. Output (activation, loss): (softmax, cross_entropy),
(sigmoid, binary_cross_entropy), (sigmoid, squared_error), (identity, squared_error).

>>> import numpy as np
>>> net = Handwritten((4, 3, 2), "relu", "softmax", "cross_entropy")
>>> rng = np.random.default_rng(0)
>>> params = {"W1": rng.normal(size=(3, 4)), "b1": np.zeros(3), "W2": rng.normal(size=(2, 3)), "b2": np.zeros(2)}
>>> X, Y = rng.normal(size=(5, 4)), np.eye(2)[[0, 1, 0, 1, 1]]
>>> sorted(net.gradients(params, X, Y)) == sorted(params)
True
"""
import numpy as np

OUTPUTS = {("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"),
           ("sigmoid", "squared_error"), ("identity", "squared_error")}


class Handwritten:
    """Hand-written forward/backward for one network; buffers are kept per batch size."""

    def __init__(self, sizes, hidden="relu", output="softmax", loss="cross_entropy", dtype=np.float64):
        if hidden not in ("relu", "tanh", "sigmoid"):
            raise ValueError(f"hidden: relu, tanh or sigmoid, got {hidden!r}")
        if (output, loss) not in OUTPUTS:
            raise ValueError(f"output/loss: one of {sorted(OUTPUTS)}, got {(output, loss)!r}")
        self.sizes, self.hidden, self.output, self.loss_name = tuple(sizes), hidden, output, loss
        self.dtype = np.dtype(dtype)
        self.L = len(sizes) - 1
        self.grads = {}
        for l in range(1, self.L + 1):
            self.grads[f"W{l}"] = np.empty((sizes[l], sizes[l - 1]), self.dtype)
            self.grads[f"b{l}"] = np.empty(sizes[l], self.dtype)
        c = lambda v: np.array(v, self.dtype)
        self.zero, self.half, self.one = c(0), c(0.5), c(1)
        self.ones_out = np.ones(sizes[-1], self.dtype)
        self._batch = None

    def _buffers(self, N):
        if self._batch != N:
            s = self.sizes
            self.a = [None] + [np.empty((N, s[l]), self.dtype) for l in range(1, self.L + 1)]
            self.d = [None] + [np.empty((N, s[l]), self.dtype) for l in range(1, self.L + 1)]
            self.f = [None] + [np.empty((N, s[l]), self.dtype) for l in range(1, self.L)]
            self.mask = [None] + [np.empty((N, s[l]), bool) for l in range(1, self.L)]
            self.row, self.zT = np.empty(N, self.dtype), np.empty((s[-1], N), self.dtype)
            self.ones = np.ones(N, self.dtype)
            self.inv_n, self.two_n = np.array(1 / N, self.dtype), np.array(2 / N, self.dtype)
            self._batch = N

    def forward(self, params, X):
        """The output activations (a view of an internal buffer: copy it to keep it)."""
        N = X.shape[0]
        self._buffers(N)
        prev = X
        for l in range(1, self.L + 1):
            a = self.a[l]
            np.dot(prev, params[f"W{l}"].T, out=a)
            a += params[f"b{l}"]
            if l < self.L:
                self._hidden(a)
            else:
                self._output(a)
            prev = a
        return prev

    def _sigmoid(self, a):
        # 0.5 + 0.5 tanh(z/2): no exp, so no overflow or underflow warnings
        a *= self.half
        np.tanh(a, out=a)
        a *= self.half
        a += self.half

    def _hidden(self, a):
        if self.hidden == "relu":
            np.maximum(a, self.zero, out=a)
        elif self.hidden == "tanh":
            np.tanh(a, out=a)
        else:
            self._sigmoid(a)

    def _output(self, a):
        if self.output == "softmax":
            row = self.row[:, None]
            np.copyto(self.zT, a.T)                  # the row maximum along the columns of a transposed copy
            np.maximum.reduce(self.zT, axis=0, out=self.row)
            a -= row
            np.exp(a, out=a)
            np.dot(a, self.ones_out, out=self.row)
            a /= row
        elif self.output == "sigmoid":
            self._sigmoid(a)

    def gradients(self, params, X, Y):
        """{"W1": dC/dW1, "b1": ..., ...} of the batch-mean loss (arrays reused from call to call)."""
        aL = self.forward(params, X)
        return self._backward(params, X, Y, aL, self.two_n if self.loss_name == "squared_error" else self.inv_n)

    def _backward(self, params, X, Y, aL, scale):
        """The gradients times ``scale`` (the batch mean's 1/N, times the learning rate in a step)."""
        d = self.d[self.L]
        np.subtract(aL, Y, out=d)
        d *= scale
        if self.loss_name == "squared_error" and self.output == "sigmoid":
            d *= aL
            d *= self.one - aL
        for l in range(self.L, 0, -1):
            prev = X if l == 1 else self.a[l - 1]
            np.dot(d.T, prev, out=self.grads[f"W{l}"])
            np.dot(self.ones, d, out=self.grads[f"b{l}"])
            if l > 1:
                below = self.d[l - 1]
                np.dot(d, params[f"W{l}"], out=below)
                a = self.a[l - 1]
                if self.hidden == "relu":
                    np.greater(a, self.zero, out=self.mask[l - 1])
                    np.multiply(below, self.mask[l - 1], out=below)
                else:
                    f = self.f[l - 1]
                    if self.hidden == "tanh":
                        np.multiply(a, a, out=f)
                        np.subtract(self.one, f, out=f)
                    else:
                        np.subtract(self.one, a, out=f)
                        f *= a
                    below *= f
                d = below
        return self.grads

    def loss(self, params, X, Y):
        """The batch-mean loss, from the forward pass."""
        return self._loss(self.forward(params, X), Y)

    def _loss(self, aL, Y):
        N = Y.shape[0]
        if self.loss_name == "squared_error":
            return np.sum((aL - Y) ** 2) / N
        tiny = np.finfo(self.dtype).tiny
        if self.loss_name == "cross_entropy":
            return -np.sum(Y * np.log(np.maximum(aL, tiny))) / N
        return -np.sum(Y * np.log(np.maximum(aL, tiny)) + (1 - Y) * np.log(np.maximum(1 - aL, tiny))) / N

    def sgd_step(self, params, X, Y, learning_rate):
        """One step of plain SGD on ``params`` in place: the gradients come out times the learning
        rate (folded into the output delta) and are subtracted. The loss is not computed."""
        aL = self.forward(params, X)
        N = X.shape[0]
        factor = 2 * learning_rate / N if self.loss_name == "squared_error" else learning_rate / N
        grads = self._backward(params, X, Y, aL, np.array(factor, self.dtype))
        for name, g in grads.items():
            params[name] -= g
