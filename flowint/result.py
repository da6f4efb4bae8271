"""The result of an integration: a number with an honest error, and how it was obtained."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scipy import stats

__all__ = ["IterationRecord", "Result", "format_uncertainty"]


def format_uncertainty(mean: float, sdev: float, digits: int = 2) -> str:
    """Format ``mean ± sdev`` the way physicists write it: ``0.98166(12)``.

    The error is shown with ``digits`` significant digits in parentheses, applying to the last
    digits of the mean; very small or large numbers get an exponent (``1.9370(12)e-10``).

    Arguments:
        mean: the central value.
        sdev: its standard deviation (>= 0).
        digits: significant digits of the error.
    """
    if not (math.isfinite(mean) and math.isfinite(sdev)):
        return f"{mean}({sdev})"
    exponent = 0
    if mean != 0.0 and not 1e-3 <= abs(mean) < 1e5:
        exponent = math.floor(math.log10(abs(mean)))
    elif mean == 0.0 and sdev != 0.0 and not 1e-3 <= sdev < 1e5:
        exponent = math.floor(math.log10(sdev))
    scale = 10.0 ** exponent
    m, s = mean / scale, sdev / scale
    suffix = f"e{exponent:+03d}" if exponent else ""
    if s == 0.0:
        return f"{m:.10g}(0){suffix}"
    places = digits - 1 - math.floor(math.log10(s))
    if places < 0:
        return f"{round(m, places):.0f}({round(s, places):.0f}){suffix}"
    err = round(s * 10.0**places)
    if err >= 10**digits:  # rounding carried over, e.g. 0.0999 -> 0.10
        places -= 1
        err = round(s * 10.0**places)
    if places <= 0:
        return f"{m:.0f}({err}){suffix}"
    return f"{m:.{places}f}({err}){suffix}"


@dataclass(frozen=True)
class IterationRecord:
    """One iteration of the integrator.

    Attributes:
        phase: ``"warmup"`` (per-axis grid adaptation), ``"train"`` (flow training),
            ``"identity"``, ``"interlaced"``, ``"grid"``, ``"strata"`` or ``"flow"``
            (quasi-random randomizations measuring that candidate sampler; also final sets
            abandoned for larger ones,
            :mod:`flowint.run.replan`) or ``"final"`` (the frozen sampler; only these, and
            with ``reuse`` late training iterations, enter the final estimate).
        n: integrand evaluations in the iteration.
        mean: the iteration's own estimate of the integral.
        sdev: its standard error.
        rel_std: relative standard deviation per sample, ``std(f/q) / |I|``.
        loss: the training divergence estimate (NaN in the final phase).
        lr: learning rate used (NaN when no gradient step was taken).
        time: wall time of the iteration, seconds.
        beta: exponent of the training target ``|f|^beta`` (below 1 while tempering; see the
            integrator's ``temper`` setting).
    """

    phase: str
    n: int
    mean: float
    sdev: float
    rel_std: float
    loss: float = math.nan
    lr: float = math.nan
    time: float = 0.0
    beta: float = 1.0


@dataclass(frozen=True)
class Result:
    """An integral estimate with its error and diagnostics (immutable, picklable).

    ``str(result)`` prints like ``0.98166(12)``; :meth:`summary` prints the per-iteration table.

    Attributes:
        mean: the estimate (from fresh samples of the frozen flow only).
        sdev: its standard error.
        chi2: χ² of the final iterations about the mean, each weighed with the i.i.d.
            variance of its points. With i.i.d. final points (``qmc=False``) it tests the
            iterations' consistency; in the default quasi-random mode the iterations are the
            independent randomizations, the error bar comes from their spread, and
            ``chi2/dof`` well below 1 measures the gain of quasi-random points over i.i.d.
            ones (Q is then close to 1 and is no consistency test).
        dof: degrees of freedom of ``chi2`` (number of final iterations minus one).
        Q: probability that a χ² this large arises by chance (small Q: inconsistent iterations).
        n_evals: total integrand evaluations (training and final estimate).
        n_evals_final: evaluations in the final estimate.
        rel_std: the effective relative standard deviation per final sample,
            ``sdev · √n_evals_final / |mean|`` (one meaning in every mode): with i.i.d. final
            points it is ``σ(f/q)/|I|``; with quasi-random points it is smaller by their gain
            (the error of the mean is what i.i.d. points of this spread would give); with
            reused training iterations, ``sdev`` is the combined error.
        ess: effective sample size of the final weights, ``(Σw)² / Σw²``.
        unweighting_efficiency: ``⟨w⟩ / max w`` of the final weights.
        max_weight_share: the largest weight's share of the sum of weights.
        history: every iteration, in order.
        wall_time: seconds from start to end.
        n_dropped: non-finite integrand values dropped (``nan_policy="drop"``).
        warnings: diagnostics raised about the reliability of the error bar.
        components: for vector integrands, per-component means; else empty.
        covariance: for vector integrands, the covariance matrix of the component estimates.
        method: the sampler of the final estimate: ``"identity"`` (plain randomized
            quasi-Monte Carlo), ``"interlaced"`` (randomized higher-order quasi-Monte Carlo:
            scrambled Sobol digits interlaced, :mod:`flowint.run.interlaced`), ``"grid"``
            (quasi-random points through a per-axis grid), ``"strata"`` (stratified sets:
            every cell of a grid sampled, most points where the integrand jumps,
            :mod:`flowint.run.strata`), ``"flow"`` (through the trained flow) or
            ``"channels"`` (a sign-changing integrand split into its positive and negative
            parts; see ``channels``).
        seconds: seconds spent in the integrand (``"f"``), in training (``"train"``: drawing
            the training batches and the gradient steps) and in sampling the measured and
            final samplers (``"sample"``); ``wall_time`` is the whole call.
        n_evals_reused: training evaluations that entered the estimate (with weights fixed
            before their draw; see :mod:`flowint.run.estimator`).
        chi2_tests: what ``chi2`` and ``Q`` test: ``"training iterations against the final
            estimate"`` (with ``" (they disagree: left out of the estimate)"`` appended when
            ``Q < 1e-3``: the estimate is then the final one alone, and ``warnings`` says so),
            ``"final iterations against each other"`` (i.i.d. final points), or
            ``""`` when they test nothing (quasi-random randomizations alone: ``chi2`` is then
            computed with the i.i.d. variance and is far below its dof by construction).
        log_mean: ``log(mean)``: with ``log=True`` computed without forming ``mean`` (which
            may underflow or overflow float64: ``mean`` is then 0 or inf); NaN when the mean
            is not positive.
        log_sdev: the error of ``log_mean`` (``sdev / mean``, first order).
        component_diagnostics: for vector integrands, one dict per component with
            ``rel_std`` (as above, per component), ``ess``, ``unweighting_efficiency``,
            ``max_weight_share``, ``pareto_k`` and ``sdev_rel_error`` of that component's
            weights (see :func:`flowint.stats.weight_diagnostics`); their warnings are in
            ``warnings``, each prefixed ``component k:``. The scalar fields ``ess`` and so on
            describe component 0. Empty for scalar integrands.
        log_scale: with ``log=True``, the unit of the history's means and errors: they are
            multiples of ``exp(log_scale)``; ``None`` otherwise.
        channels: for a split run (``method == "channels"``, :mod:`flowint.run.split`),
            ``{"+": result for f⁺ = max(f, 0), "-": result for f⁻ = max(−f, 0)}``, each a
            full :class:`Result` of its own channel (sampler, history, every diagnostic;
            ``n_evals`` and ``seconds`` count the whole channel, its pilot training included).
            The split result is then ``mean = m⁺ − m⁻``, ``sdev = √(s⁺² + s⁻²)`` (the
            channels draw independent points). A split that ends in its residual channel
            has ``{"r": result for A = c⁺q⁺ − c⁻q⁻ − f}`` instead, and ``mean = c⁺ − c⁻ −
            m_r``, ``sdev = s_r`` (the parts' flows ``q±`` are densities of known integral;
            :mod:`flowint.run.split`), and its ``ess``, weight diagnostics and χ² are those
            of ``A``'s channel, not of ``f``; ``n_evals`` counts every call (the points
            seen before the split, the channels' pilots and calls); ``n_evals_final``,
            ``n_evals_reused`` and ``ess`` are sums over the channels, ``chi2``/``dof`` the
            sums of the channels' tests, ``unweighting_efficiency`` the smaller and
            ``max_weight_share`` the larger of the two, ``rel_std`` is
            ``sdev · √n_evals_final / |mean|``; ``warnings`` are the channels', prefixed
            ``channel +:`` / ``channel -:``; ``history`` is the integrator's own history (its
            earlier calls and this call's iterations before the split). A multi-channel run
            (``channels=``, :mod:`flowint.run.mode_channels`) is summed alike, its channels
            named ``"rest"``, ``"m0"``, ``"m1"``, … (or ``"c0"``, … for given maps), all with
            sign ``+1``. Empty otherwise.
        channel_alpha: for a multi-channel run, each channel's weight ``α_c`` in the
            partition ``w_c = α_c ρ_c / Σ_j α_j ρ_j`` that its estimate integrated (learned
            from the pilots with ``learn_alpha``, :mod:`flowint.run.alpha`); empty otherwise.
    """

    mean: float
    sdev: float
    chi2: float
    dof: int
    Q: float
    n_evals: int
    n_evals_final: int
    rel_std: float
    ess: float
    unweighting_efficiency: float
    max_weight_share: float
    history: tuple[IterationRecord, ...] = ()
    wall_time: float = 0.0
    n_dropped: int = 0
    warnings: tuple[str, ...] = ()
    components: tuple[float, ...] = ()
    covariance: tuple[tuple[float, ...], ...] = field(default=())
    method: str = "flow"
    seconds: dict[str, float] = field(default_factory=dict)
    n_evals_reused: int = 0
    chi2_tests: str = ""
    log_mean: float = math.nan
    log_sdev: float = math.nan
    log_scale: float | None = None
    component_diagnostics: tuple[dict[str, float], ...] = ()
    channels: dict[str, Result] = field(default_factory=dict)
    channel_alpha: dict[str, float] = field(default_factory=dict)

    @property
    def n_evals_train(self) -> int:
        """Evaluations spent on training (warm-up and flow training)."""
        return self.n_evals - self.n_evals_final

    @property
    def chi2_dof(self) -> float:
        """χ² per degree of freedom (NaN with a single final iteration)."""
        return self.chi2 / self.dof if self.dof > 0 else math.nan

    @property
    def rel_error(self) -> float:
        """``sdev / |mean|``."""
        return self.sdev / abs(self.mean) if self.mean != 0 else math.inf

    def pull(self, exact: float) -> float:
        """``(mean - exact) / sdev``: how many standard errors the estimate is off."""
        if self.sdev == 0:
            return 0.0 if self.mean == exact else math.copysign(math.inf, self.mean - exact)
        return (self.mean - exact) / self.sdev

    def log_pull(self, log_exact: float) -> float:
        """``(log_mean - log_exact) / log_sdev``: the pull of ``log_mean`` (for evidences)."""
        if not self.log_sdev > 0:
            return 0.0 if self.log_mean == log_exact else math.copysign(
                math.inf, self.log_mean - log_exact)
        return (self.log_mean - log_exact) / self.log_sdev

    def to_gvar(self):
        """The estimate as a ``gvar.GVar`` (requires the ``gvar`` package)."""
        try:
            import gvar
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_gvar needs the gvar package: pip install gvar") from exc
        return gvar.gvar(self.mean, self.sdev)

    def __str__(self) -> str:
        if self.log_scale is not None:  # an integrand given as a logarithm: exp(-14.592(31))
            return f"exp({format_uncertainty(self.log_mean, self.log_sdev)})"
        return format_uncertainty(self.mean, self.sdev)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def summary(self) -> str:
        """A per-iteration table followed by the final estimate and diagnostics."""
        tempered = any(r.beta < 1.0 for r in self.history)  # a beta column only then
        lines = [
            "  it  phase       n        estimate            rel std/sample      loss        lr"
            + ("     beta" if tempered else ""),
            "  " + "-" * (78 + 9 * tempered),
        ]
        for i, r in enumerate(self.history, 1):
            loss = f"{r.loss:10.4g}" if math.isfinite(r.loss) else " " * 10
            lr = f"{r.lr:9.2e}" if math.isfinite(r.lr) else " " * 9
            lines.append(
                f"{i:4d}  {r.phase:<7} {r.n:8d}  {format_uncertainty(r.mean, r.sdev):<22} "
                f"{r.rel_std:12.4g}   {loss}  {lr}" + (f"  {r.beta:7.3g}" if tempered else "")
            )
        lines += [
            "",
            f"result = {self}   (rel. error {self.rel_error:.2g})",
            (f"chi2/dof = {self.chi2_dof:.2f}  Q = {self.Q:.2f}  ({self.chi2_tests}: "
             f"{self.dof + 1} estimates)" if self.chi2_tests else
             "chi2/dof, Q: no consistency test here (the error bar is the spread of independent "
             "quasi-random randomizations)"),
            f"evaluations: {self.n_evals} total, {self.n_evals_train} training, "
            f"{self.n_evals_final} final",
            f"rel. std per sample = {self.rel_std:.4g}   ESS = {self.ess:.4g}   "
            f"unweighting efficiency = {self.unweighting_efficiency:.3g}",
            f"wall time = {self.wall_time:.2f} s",
        ]
        for name, part in self.channels.items():
            alpha = f"α = {self.channel_alpha[name]:.3g}; " if name in self.channel_alpha else ""
            lines.append(f"channel {name}: {part}  ({alpha}{part.method}; {part.n_evals} "
                         f"evaluations, {part.n_evals_final} final; rel. std per sample "
                         f"{part.rel_std:.4g})")
        if self.n_dropped:
            lines.append(f"non-finite values dropped: {self.n_dropped}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Result({self}, chi2/dof={self.chi2_dof:.2f}, Q={self.Q:.2f}, "
                f"n_evals={self.n_evals}, rel_std={self.rel_std:.3g})")


def chi2_q(chi2: float, dof: int) -> float:
    """The χ² survival probability ``Q`` (1 when there is nothing to test)."""
    return float(stats.chi2.sf(chi2, dof)) if dof > 0 else 1.0
