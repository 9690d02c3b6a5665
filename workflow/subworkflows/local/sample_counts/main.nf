//
// Per sample: trim -> align -> count (each sample independent; a QC-poor sample is not an error)
//
include { CFRNA_TRIM  } from '../../../modules/local/trim/main'
include { CFRNA_ALIGN } from '../../../modules/local/align/main'
include { CFRNA_COUNT } from '../../../modules/local/count/main'

workflow SAMPLE_COUNTS {
    take:
    ch_reads     // channel: [ val(meta), [ fastq_1, fastq_2? ] ]
    ch_fasta     // channel (value): [ val(meta2), path(genome.fa) ]
    ch_gtf       // channel (value): [ val(meta3), path(genes.gtf) ]
    ch_index     // channel (value): [ val(meta4), path(index dir) ]
    aligner      // string: mappy | star
    skip_trim    // boolean

    main:
    ch_trim_json = Channel.empty()

    if (skip_trim) {
        ch_trimmed = ch_reads
    } else {
        CFRNA_TRIM(ch_reads)
        ch_trimmed   = CFRNA_TRIM.out.reads
        ch_trim_json = CFRNA_TRIM.out.json
    }

    CFRNA_ALIGN(ch_trimmed, ch_fasta, ch_gtf, ch_index, aligner)

    // count with the strandedness that align recorded (inferred when the sheet says auto)
    CFRNA_COUNT(CFRNA_ALIGN.out.bam.join(CFRNA_ALIGN.out.json, failOnDuplicate: true, failOnMismatch: true), ch_gtf)

    emit:
    trim_json  = ch_trim_json             // channel: [ val(meta), path(<id>.trim.json) ]
    bam        = CFRNA_ALIGN.out.bam      // channel: [ val(meta), path(bam), path(bai) ]
    align_json = CFRNA_ALIGN.out.json     // channel: [ val(meta), path(<id>.align.json) ]
    counts     = CFRNA_COUNT.out.counts   // channel: [ val(meta), path(<id>.counts.tsv) ]
    summary    = CFRNA_COUNT.out.summary  // channel: [ val(meta), path(<id>.counts.tsv.summary) ]
    stats      = CFRNA_COUNT.out.stats    // channel: [ val(meta), path(<id>.counts.tsv.stats.json) ]
    dedup      = CFRNA_COUNT.out.dedup    // channel: [ val(meta), path(<id>.counts.dedup.tsv) ] (params.dedup != none)
    // versions: on the `versions` topic (each module's versions_* outputs)
}
