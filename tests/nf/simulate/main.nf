// CFRNA_SIMULATE: a 4-sample cohort (the fewest with contrasts) of 300 reads per sample, seed 7
nextflow.preview.topic = true
include { CFRNA_SIMULATE } from '../../../workflow/modules/local/simulate/main'

workflow TEST_CFRNA_SIMULATE {
    CFRNA_SIMULATE(4, 300, 7)
}

workflow {
    TEST_CFRNA_SIMULATE()
}
