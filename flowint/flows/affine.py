"""The affine flow ``x = A z + b`` with ``log|det A|`` in ``O(d)`` (lecture notes §3.3).

``A`` is stored in an LU form, ``A = P L U``: ``P`` a fixed permutation, ``L`` unit lower
triangular and ``U`` upper triangular with diagonal ``s * exp(log_diag)`` (``s`` a fixed sign,
``+1`` unless the layer was built from a matrix). Then ``log|det A| = sum(log_diag)``, the
generative map costs two triangular products and the normalizing map two triangular solves
(``O(d^2)`` per point instead of ``O(d^3)``). Two restricted kinds drop factors: ``"triangular"``
(``A`` lower triangular) and ``"diagonal"``.

With ``z ~ N(0, I)`` the flow is the Gaussian ``N(b, A A^T)``, and two affine flows compose to an
affine flow (:meth:`Affine.compose`).

Reference:
    Glow: Generative Flow with Invertible 1x1 Convolutions (D. P. Kingma, P. Dhariwal, 2018),
    https://arxiv.org/abs/1807.03039 — the LU-decomposed linear layer.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .base import Bijection

__all__ = ["Affine", "AFFINE_KINDS"]

AFFINE_KINDS = ("lu", "triangular", "diagonal")


class Affine(Bijection):
    """``x = A z + b`` with ``A`` in LU form (see the module docstring).

    Arguments:
        dim: number of coordinates.
        kind: ``"lu"`` (``A = P L U``, any invertible matrix), ``"triangular"`` (``A`` lower
            triangular with non-zero diagonal) or ``"diagonal"``.
        perm: the fixed permutation of the ``"lu"`` kind, as a sequence with
            ``(P y)_i = y_{perm[i]}`` (default: the identity).

    The parameters start at the identity map (``A = I`` unless ``perm`` is given, ``b = 0``).

    Example:
        >>> layer = Affine(3, kind="lu")
        >>> x, ladj = layer(torch.randn(10, 3))
        >>> A, b = layer.matrix(), layer.shift
    """

    def __init__(self, dim: int, kind: str = "lu", perm: Sequence[int] | Tensor | None = None):
        super().__init__()
        if kind not in AFFINE_KINDS:
            raise ValueError(f"unknown affine kind {kind!r}; choose one of {list(AFFINE_KINDS)}")
        dim = int(dim)
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if perm is not None and kind != "lu":
            raise ValueError("perm applies to kind='lu' only")
        perm = torch.arange(dim) if perm is None else torch.as_tensor(perm, dtype=torch.long)
        if perm.shape != (dim,) or not torch.equal(perm.sort().values, torch.arange(dim)):
            raise ValueError(f"perm must be a permutation of range({dim})")
        self.dim, self.kind = dim, kind
        n_off = dim * (dim - 1) // 2
        self.shift = nn.Parameter(torch.zeros(dim))
        self.log_diag = nn.Parameter(torch.zeros(dim))
        self.register_buffer("signs", torch.ones(dim))
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))
        self.register_buffer("_tril", torch.tril_indices(dim, dim, -1), persistent=False)
        # Strictly triangular entries (none for dim 1, where every kind is diagonal).
        self.lower = nn.Parameter(torch.zeros(n_off)) if kind != "diagonal" and n_off else None
        self.upper = nn.Parameter(torch.zeros(n_off)) if kind == "lu" and n_off else None

    # --- the factors -------------------------------------------------------------------------

    def diagonal(self) -> Tensor:
        """The diagonal of ``U`` (of ``A`` for the restricted kinds), shape ``(dim,)``."""
        return self.signs * torch.exp(self.log_diag)

    def _strict(self, values: Tensor | None, upper: bool) -> Tensor:
        """A strictly lower (or upper) triangular matrix holding ``values`` (or zeros)."""
        m = torch.zeros(self.dim, self.dim, dtype=self.log_diag.dtype,
                        device=self.log_diag.device)
        if values is None:
            return m
        rows, cols = self._tril[1 if upper else 0], self._tril[0 if upper else 1]
        return m.index_put((rows, cols), values)

    def lower_matrix(self) -> Tensor:
        """``L``: unit lower triangular for ``"lu"``; the whole ``A`` for ``"triangular"``."""
        if self.kind == "diagonal":
            return torch.eye(self.dim, dtype=self.log_diag.dtype, device=self.log_diag.device)
        diag = torch.diag(self.diagonal() if self.kind == "triangular" else
                          torch.ones_like(self.log_diag))
        return self._strict(self.lower, upper=False) + diag

    def upper_matrix(self) -> Tensor:
        """``U``: upper triangular with diagonal :meth:`diagonal` (identity if not ``"lu"``)."""
        if self.kind != "lu":
            return torch.eye(self.dim, dtype=self.log_diag.dtype, device=self.log_diag.device)
        return self._strict(self.upper, upper=True) + torch.diag(self.diagonal())

    def matrix(self) -> Tensor:
        """The dense matrix ``A`` (shape ``(dim, dim)``)."""
        if self.kind == "diagonal":
            return torch.diag(self.diagonal())
        a = self.lower_matrix() @ self.upper_matrix()
        return a[self.perm] if self.kind == "lu" else a

    def log_abs_det(self) -> Tensor:
        """``log|det A|`` (a scalar), in ``O(dim)``."""
        return self.log_diag.sum()

    # --- the maps ----------------------------------------------------------------------------

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        if self.kind == "diagonal":
            x = z * self.diagonal()
        else:
            x = z @ self.upper_matrix().T if self.kind == "lu" else z
            x = x @ self.lower_matrix().T
            if self.kind == "lu":
                x = x[:, self.perm]
        return x + self.shift, self.log_abs_det().expand(z.shape[0])

    def inverse(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = x - self.shift
        if self.kind == "diagonal":
            z = y / self.diagonal()
        else:
            lu = self.kind == "lu"
            if lu:
                y = y[:, self.inv_perm]
            # Row-vector solves: z A^T = y with A^T upper triangular.
            z = torch.linalg.solve_triangular(self.lower_matrix().T, y, upper=True, left=False,
                                              unitriangular=lu)
            if lu:
                z = torch.linalg.solve_triangular(self.upper_matrix().T, z, upper=False,
                                                  left=False)
        return z, (-self.log_abs_det()).expand(x.shape[0])

    # --- algebra -----------------------------------------------------------------------------

    @classmethod
    def from_matrix(cls, matrix: Tensor, shift: Tensor | None = None,
                    kind: str = "lu") -> Affine:
        """The affine layer ``x = matrix @ z + shift``.

        Arguments:
            matrix: an invertible ``(dim, dim)`` matrix; for ``kind="triangular"`` it must be
                lower triangular and for ``"diagonal"`` diagonal.
            shift: the offset ``b`` (default zero).
            kind: the kind of the new layer; ``"lu"`` uses a partial-pivoting LU factorisation
                (``torch.linalg.lu``), whose permutation becomes ``P``.

        Returns:
            An :class:`Affine` with the dtype and device of ``matrix``.

        Raises:
            ValueError: if ``matrix`` is singular or lacks the structure of ``kind``.
        """
        a = torch.as_tensor(matrix)
        d = a.shape[-1]
        if a.shape != (d, d):
            raise ValueError(f"matrix must be square, got shape {tuple(a.shape)}")
        if kind == "lu":
            p, lower, upper = torch.linalg.lu(a)
            # A = p L U, so (A z)_i = (L U z)_{perm[i]} with perm[i] the column of p's one in row i.
            layer = cls(d, "lu", perm=p.argmax(1)).to(a)
        else:
            off = a - torch.diag(a.diagonal()) if kind == "diagonal" else a.triu(1)
            if off.abs().max() > 0:
                raise ValueError(f"matrix is not {kind}")
            layer = cls(d, kind).to(a)
            lower, upper = a, torch.diag(a.diagonal())
        diag = upper.diagonal()
        if not torch.all(diag != 0):
            raise ValueError("matrix is singular")
        with torch.no_grad():
            layer.signs.copy_(torch.sign(diag))
            layer.log_diag.copy_(torch.log(diag.abs()))
            if layer.lower is not None:
                layer.lower.copy_(lower[layer._tril[0], layer._tril[1]])
            if layer.upper is not None:
                layer.upper.copy_(upper[layer._tril[1], layer._tril[0]])
            if shift is not None:
                layer.shift.copy_(torch.as_tensor(shift, dtype=a.dtype, device=a.device))
        return layer

    def compose(self, other: Affine) -> Affine:
        """The affine layer ``self ∘ other``: ``z -> A_self (A_other z + b_other) + b_self``.

        The result has the smallest kind holding both (``"diagonal"`` < ``"triangular"`` <
        ``"lu"``); its parameters are detached copies.

        Example:
            >>> f, g = Affine(2), Affine(2)
            >>> h = f.compose(g)  # h(z) == f(g(z))
        """
        if other.dim != self.dim:
            raise ValueError(f"cannot compose dims {self.dim} and {other.dim}")
        rank = {k: i for i, k in enumerate(reversed(AFFINE_KINDS))}
        kind = max(self.kind, other.kind, key=rank.__getitem__)
        with torch.no_grad():
            c = self.matrix()
            return Affine.from_matrix(c @ other.matrix(), c @ other.shift + self.shift, kind)

    def config(self) -> dict:
        return {"dim": self.dim, "kind": self.kind}
