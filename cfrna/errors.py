"""Error hierarchy. Every error the user can fix carries an exit code and a one-line message.

Exit codes (DESIGN.md): 0 success, 2 usage/config error, 1 bad input data, 130 interrupted.
Messages say what is wrong, where (file:line, column or sample) and how to fix it.
"""

from __future__ import annotations


class CfrnaError(Exception):
    """Base class: a problem the user can fix; printed as one line, no traceback."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = []
        if self.where:
            parts.append(f"{self.where}: ")
        parts.append(self.message)
        if self.hint:
            parts.append(f" ({self.hint})")
        return "".join(parts).replace("\n", " ")


class InputFormatError(CfrnaError):
    """Input data is malformed (FASTQ, BAM, GTF, FASTA, counts table, GMT...). Exit 1."""

    exit_code = 1


class ConfigError(CfrnaError):
    """Samplesheet, contrasts, parameters or design are inconsistent. Exit 2."""

    exit_code = 2


class EmptyResultError(CfrnaError):
    """A stage would produce an empty result (no reads, no genes, empty group). Exit 1."""

    exit_code = 1


class ToolMissingError(CfrnaError):
    """An external tool (STAR, featureCounts, multiqc...) is needed but not installed. Exit 2."""

    exit_code = 2
