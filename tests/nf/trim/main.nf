// CFRNA_TRIM: the raw FASTQ of --samples
nextflow.preview.topic = true
include { CFRNA_TRIM } from '../../../workflow/modules/local/trim/main'
include { sampleMetas; sampleMeta } from '../lib'

workflow TEST_CFRNA_TRIM {
    CFRNA_TRIM(Channel.fromList(sampleMetas()).map { m -> [sampleMeta(m), m.fastq] })
}

workflow {
    TEST_CFRNA_TRIM()
}
