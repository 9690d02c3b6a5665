"""Readers and writers: samplesheet, FASTQ, BAM, tables, atomic writes."""
