"""PCR duplicates and UMIs of low-input libraries, with exact truth.

A low-input library holds a finite pool of ``M`` distinct molecules (fragments). PCR copies them
with efficiencies that vary between molecules, and sequencing draws ``N`` reads *with replacement*
from the amplified pool: molecule ``i`` is read with probability ``p_i = w_i / sum(w)``, with
amplification weights ``w_i ~ Gamma(shape 1/cv^2, scale cv^2)`` (mean 1, coefficient of variation
``cv``; ``cv = 0`` is uniform). So the duplicate fraction rises with depth as in real low-input
libraries, and the expected number of distinct molecules seen at any depth ``D`` is exact:

``E[U(D)] = sum_i (1 - (1 - p_i)^D)``

which gives the truth written beside the data (``truth/duplicates.tsv``): the realised and the
expected duplicate fraction at the simulated depth, the molecule count and the expected unique
fragments at 2x depth.

UMIs: every molecule carries a random UMI of ``umi_length`` bases; every read of it shows that UMI
with independent substitutions at ``umi_error_rate`` per base (PCR and sequencing errors of the UMI,
on top of the read's own substitution model when the UMI is in the read). The UMI goes where the
kit puts it: the first bases of read 2 (SMARTer Pico v3 style: ``--umi_pattern`` ``NNNNNNNN`` on
read 2), the first bases of read 1 (single-end), or the read name (``<name>_<UMI>``, umi_tools'
convention, for FASTQ demultiplexed with the UMI already extracted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cfrna.errors import ConfigError

UMI_LOCATIONS = ("auto", "read1", "read2", "name")
#: spread of the per-sample molecule pool around ``molecules`` (log-normal sd of the sample factor)
POOL_SPREAD = 0.35


@dataclass(frozen=True)
class DuplicateSpec:
    """Options of the duplicate/UMI model (all off by default)."""

    molecules: int | None = None
    pcr_duplicates: float | None = None
    amplification_cv: float = 0.5
    umi_length: int = 0
    umi_error_rate: float = 0.002
    umi_location: str = "auto"

    @property
    def duplicates(self) -> bool:
        return self.molecules is not None or self.pcr_duplicates is not None

    @property
    def active(self) -> bool:
        return self.duplicates or self.umi_length > 0

    def check(self, *, reads_per_sample: int, paired: bool, read_length: int) -> DuplicateSpec:
        """Validate (ConfigError naming the option) and resolve ``umi_location`` ``auto``."""
        w = "simulate"
        if self.molecules is not None and self.pcr_duplicates is not None:
            raise ConfigError("--molecules and --pcr-duplicates both given", where=w,
                              hint="give the pool size (--molecules) or the duplicate fraction to plant "
                                   "(--pcr-duplicates), not both")
        if self.molecules is not None and (not isinstance(self.molecules, (int, np.integer)) or self.molecules < 10):
            raise ConfigError(f"--molecules {self.molecules} is below 10", where=w,
                              hint="give the number of distinct molecules per library, e.g. --molecules 5000")
        if self.pcr_duplicates is not None and not 0.0 < float(self.pcr_duplicates) < 0.95:
            raise ConfigError(f"--pcr-duplicates {self.pcr_duplicates} outside (0, 0.95)", where=w,
                              hint="give the expected duplicate fraction at --reads-per-sample, e.g. 0.3")
        if not 0.0 <= float(self.amplification_cv) <= 3.0:
            raise ConfigError(f"--amplification-cv {self.amplification_cv} outside 0..3", where=w,
                              hint="0 = every molecule amplified equally; 0.5 is typical")
        if not isinstance(self.umi_length, (int, np.integer)) or not 0 <= self.umi_length <= 16:
            raise ConfigError(f"--umi-length {self.umi_length} outside 0..16", where=w,
                              hint="kits use 6-12 nt UMIs, e.g. --umi-length 8")
        if not 0.0 <= float(self.umi_error_rate) <= 0.1:
            raise ConfigError(f"--umi-error-rate {self.umi_error_rate} outside 0..0.1", where=w)
        if self.umi_location not in UMI_LOCATIONS:
            raise ConfigError(f"--umi-location {self.umi_location!r} unknown", where=w,
                              hint=f"use one of {', '.join(UMI_LOCATIONS)}")
        loc = self.umi_location
        if loc == "auto":
            loc = "read2" if paired else "read1"
        if loc == "read2" and not paired:
            raise ConfigError("--umi-location read2 needs --paired", where=w,
                              hint="single-end libraries carry the UMI in read 1 or in the read name")
        if self.umi_length and loc != "name" and read_length - self.umi_length < 30:
            raise ConfigError(f"--umi-length {self.umi_length} leaves fewer than 30 bases of read", where=w,
                              hint="use a longer --read-length or a shorter UMI")
        if self.umi_length and not self.duplicates:
            raise ConfigError("--umi-length needs --molecules or --pcr-duplicates", where=w,
                              hint="UMIs tell PCR copies apart; plant duplicates with --molecules N or "
                                   "--pcr-duplicates F")
        return DuplicateSpec(self.molecules, self.pcr_duplicates, float(self.amplification_cv),
                             int(self.umi_length), float(self.umi_error_rate), loc)


def expected_unique(p: np.ndarray, depth: float) -> float:
    """Exact ``E[U(depth)] = sum_i 1 - (1 - p_i)^depth`` for reads drawn with replacement."""
    return float(-np.expm1(depth * np.log1p(-np.minimum(p, 1 - 1e-15))).sum())


def pool_for_fraction(dup_fraction: float, reads: int, cv: float) -> int:
    """Molecule pool ``M`` whose expected duplicate fraction at ``reads`` is ``dup_fraction``.

    Uses the gamma-mixed Poisson expectation ``M (1 - (1 + lambda cv^2)^(-1/cv^2))`` with
    ``lambda = reads / M`` (``M (1 - exp(-lambda))`` for ``cv = 0``), solved by bisection.
    """
    target = reads * (1.0 - dup_fraction)

    def uniq(m: float) -> float:
        lam = reads / m
        if cv == 0:
            return m * -math.expm1(-lam)
        r = 1.0 / cv**2
        return m * -math.expm1(-r * math.log1p(lam / r))

    lo, hi = 1.0, 1e12
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        if uniq(mid) < target:
            lo = mid
        else:
            hi = mid
    return max(10, int(round(hi)))


def sample_pool(spec: DuplicateSpec, reads: int, rng: np.random.Generator) -> int:
    """The molecule pool of one sample: the median pool times a log-normal sample factor."""
    base = spec.molecules if spec.molecules is not None else pool_for_fraction(float(spec.pcr_duplicates), reads,
                                                                                spec.amplification_cv)
    return max(10, int(round(base * math.exp(rng.normal(0.0, POOL_SPREAD)))))


def amplify(n_molecules: int, reads: int, cv: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Reads drawn with replacement from the amplified pool: ``(molecule index per read, p)``."""
    if cv > 0:
        w = rng.gamma(1.0 / cv**2, cv**2, size=n_molecules)
    else:
        w = np.ones(n_molecules)
    p = w / w.sum()
    idx = rng.choice(n_molecules, size=reads, p=p)
    return idx.astype(np.int64), p


def umis(n_molecules: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Random UMI codes (0-3), one row per molecule."""
    return rng.integers(0, 4, size=(n_molecules, length), dtype=np.uint8)


def observed_umis(true_umis: np.ndarray, mol: np.ndarray, error_rate: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Per-read UMIs (codes) with substitutions at ``error_rate`` per base; returns (codes, n_errors)."""
    out = true_umis[mol].copy()
    if error_rate > 0 and out.size:
        err = rng.random(out.shape) < error_rate
        rows, cols = np.nonzero(err)
        out[rows, cols] = (out[rows, cols] + rng.integers(1, 4, size=len(rows), dtype=np.uint8)) % 4
        return out, int(len(rows))
    return out, 0


def put_umi_in_read(bases: np.ndarray, quals: np.ndarray, umi: np.ndarray,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The UMI as the first bases of the read, followed by the read's first ``L - len(UMI)`` bases."""
    k = umi.shape[1]
    q_umi = (rng.integers(30, 39, size=umi.shape, dtype=np.int16) + 33).astype(np.uint8)
    return (np.concatenate([umi, bases[:, : bases.shape[1] - k]], axis=1),
            np.concatenate([q_umi, quals[:, : quals.shape[1] - k]], axis=1))
