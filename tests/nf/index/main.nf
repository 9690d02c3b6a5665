// CFRNA_INDEX: the mappy index of the cohort's genome, built in the task (no cache folder)
nextflow.preview.topic = true
include { CFRNA_INDEX } from '../../../workflow/modules/local/index/main'
include { gtfTuple; fastaTuple } from '../lib'

workflow TEST_CFRNA_INDEX {
    CFRNA_INDEX(fastaTuple(), gtfTuple(), 'mappy', '')
}

workflow {
    TEST_CFRNA_INDEX()
}
