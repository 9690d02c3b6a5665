"""Helpers shared by the test modules, imported one way: ``from tests.helpers.<module> import ...``.

- :mod:`tests.helpers.bam`: BAM/BGZF writers (``bam_record``, ``bgzf_block``, ``make_synthetic``, ``make_flag_zoo``);
- :mod:`tests.helpers.naive_count`: the slow reference counter (``naive_count``);
- :mod:`tests.helpers.featurecounts`: running featureCounts (``featurecounts``, ``FC_OPTIONS``);
- :mod:`tests.helpers.fastq`: FASTQ records as lists (``read_fastq``, ``write_fastq``);
- :mod:`tests.helpers.report`: a results folder for the report tests (``build_results``).

Fixtures and the skip/fail policy (``require_tool``, ``require_module``, ``require_shared``) are in
tests/conftest.py.
"""
