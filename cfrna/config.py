"""The project's shared vocabularies, each defined once.

Command-line choices, samplesheet and parameter validation, the Nextflow schema
(``nextflow_schema.json``, ``assets/schema_input.json``; a test checks their enums against these) and
the stages all take their allowed values from here.
"""

from __future__ import annotations

#: library strand protocols (featureCounts ``-s 0/1/2`` in this order)
STRANDEDNESS = ("unstranded", "forward", "reverse")
#: what a user may give (samplesheet column, ``--strandedness``): a protocol, or ``auto`` = inferred from the BAM
STRANDEDNESS_MODES = (*STRANDEDNESS, "auto")
#: featureCounts ``-s`` code of each protocol
STRAND_CODE = {s: i for i, s in enumerate(STRANDEDNESS)}

#: aligners of ``cfrna index`` / ``align`` / ``run`` (the first is the default)
ALIGNERS = ("mappy", "star")
DEFAULT_ALIGNER = ALIGNERS[0]

#: duplicate handling when counting: none, by position, UMI-directional (umi_tools), unique UMIs
DEDUP_MODES = ("none", "position", "directional", "unique")
#: ``cfrna run --dedup``: a method, or ``auto`` = directional for samples with UMIs, else position
DEDUP_RUN_MODES = ("auto", *DEDUP_MODES)
#: ``cfrna run --de-counts``: the counts DE tests (``auto`` = dedup when every sample has UMIs, else raw)
DE_COUNTS = ("auto", "raw", "dedup")

#: per-sample QC decisions, mildest first
QC_STATUSES = ("pass", "warn", "fail")
#: the level a QC rule may raise
QC_RULE_LEVELS = ("off", "warn", "fail")
