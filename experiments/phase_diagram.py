"""Order-to-chaos phase diagram of tanh and relu networks (theory/signal_propagation.md §3).

chi_1(sigma_w^2, sigma_b^2) on a grid from the fixed point q* (SP-4) and (SP-3), the contour
chi_1 = 1, and the boundary (SP-9) parametrized by q* drawn on top: the two must coincide.
relu: chi_1 = sigma_w^2/2 where the length has a fixed point (sigma_w^2 < 2); the critical
point is (2, 0); to its right (and on sigma_w^2 = 2 with sigma_b > 0) the length diverges.

    python experiments/phase_diagram.py [OUT_DIR]     (default figures/phase_diagram; ~1 min)
"""

import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rfsim.theory.signal_propagation import chi_1, critical_line, fixed_point_q  # noqa: E402


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    w2 = np.linspace(0.25, 4.0, 46)
    b2 = np.linspace(0.0, 1.0, 31)
    W2, B2 = np.meshgrid(w2, b2, indexing="ij")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    lines = []
    for ax, act in zip(axes, ("tanh", "relu")):
        w, b = jnp.sqrt(W2), jnp.sqrt(B2)
        q = fixed_point_q(activation=act, w_std=w, b_std=b)  # (SP-4)
        chi = np.asarray(chi_1(jnp.where(jnp.isfinite(q), q, 1.0), activation=act, w_std=w))
        chi = np.where(np.isfinite(np.asarray(q)), chi, np.nan)  # (SP-3); NaN: q diverges
        mesh = ax.pcolormesh(W2, B2, np.log(chi), cmap="RdBu_r", vmin=-1.5, vmax=1.5,
                             shading="auto")
        if act == "tanh":
            ax.contour(W2, B2, chi, levels=[1.0], colors="k", linewidths=2.5)
            qs = jnp.geomspace(1e-3, 20.0, 200)
            cw2, cb2 = (np.asarray(a) for a in critical_line(qs, activation=act))
            keep = np.isfinite(cw2) & (cb2 <= b2[-1]) & (cw2 <= w2[-1])
            ax.plot(cw2[keep], cb2[keep], "--", color="gold", lw=1.5,
                    label="SP-9 (parametrized by q*)")
            lines = list(zip(np.asarray(qs), cw2, cb2))
            ax.text(0.6, 0.8, "ordered\nchi_1 < 1", fontsize=11)
            ax.text(3.0, 0.15, "chaotic\nchi_1 > 1", fontsize=11)
        else:
            ax.fill_between([2.0, w2[-1]], 0, b2[-1], color="0.85", hatch="//",
                            label="q diverges (no fixed point)")
            ax.plot([2.0], [0.0], "o", color="gold", ms=9, clip_on=False,
                    label="critical point (2, 0)")
            ax.text(0.6, 0.8, "ordered\nchi_1 = sigma_w^2/2 < 1", fontsize=11)
        ax.set_xlabel("sigma_w^2")
        ax.set_ylabel("sigma_b^2")
        ax.set_title(f"{act}: log chi_1, boundary chi_1 = 1")
        ax.legend(loc="upper right", fontsize=8)
    fig.colorbar(mesh, ax=axes, label="log chi_1")
    fig.savefig(out / "phase_diagram.png", dpi=130)
    fig.savefig(out / "phase_diagram.pdf")
    with open(out / "tanh_critical_line.csv", "w") as f:
        f.write("q_star,w_std2,b_std2\n")
        for q, a, b in lines:
            if np.isfinite(a):
                f.write(f"{float(q)!r},{float(a)!r},{float(b)!r}\n")
    print(f"wrote {out / 'phase_diagram.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("figures/phase_diagram"))
