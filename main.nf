#!/usr/bin/env nextflow
/*
 * cfrna: plasma cell-free RNA sequencing -> QC-gated gene counts, differential expression and
 * pathway signatures. The same stages as `cfrna run`, with the same output tree under --outdir.
 *
 *   nextflow run . -profile test                      # simulated cohort, 2 cores
 *   nextflow run . --input samplesheet.csv --fasta genome.fa --gtf genes.gtf \
 *       --contrasts contrasts.csv --outdir results -profile slurm
 *
 * Parameters: docs/parameters.md; usage: docs/usage.md. main.nf sits at the root so that bin/
 * (the cfrna-<stage> shims) is on every task's PATH.
 */
nextflow.enable.dsl = 2

include { CFRNA } from './workflow/workflows/cfrna'

def checkParams() {
    def errors = []
    if (!params.simulate) {
        ['input', 'fasta', 'gtf'].each { p ->
            if (!params[p]) errors << "--${p} is required (or use -profile test for a simulated cohort)"
        }
    }
    if (params.simulate && params.input) {
        errors << "--input and --simulate (set by -profile test) exclude each other: add --simulate false to run on --input"
    }
    if (!(params.aligner in ['mappy', 'star'])) errors << "--aligner must be mappy or star, not '${params.aligner}'"
    if (!params.outdir) errors << "--outdir is required"
    if (!(params.publish_dir_mode in ['copy', 'copyNoFollow', 'link', 'rellink', 'symlink', 'move'])) {
        errors << "--publish_dir_mode must be copy, copyNoFollow, link, rellink, symlink or move"
    }
    if (params.min_mapq.toString().isInteger() == false || params.min_mapq.toString().toInteger() < 0) {
        errors << "--min_mapq must be a non-negative integer"
    }
    if (errors) {
        error("cfrna: invalid parameters:\n  " + errors.join("\n  ") + "\n(see docs/parameters.md)")
    }
}

workflow {
    checkParams()
    CFRNA()
}

workflow.onComplete {
    if (workflow.success) {
        log.info "cfrna: done; report: ${params.outdir}/report/index.html"
    } else {
        log.error "cfrna: failed (${workflow.errorMessage ?: 'see .nextflow.log'}); fix the cause and rerun with -resume"
    }
}
