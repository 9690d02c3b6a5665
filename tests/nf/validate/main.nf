// CFRNA_VALIDATE: the cohort's samplesheet, contrasts and reference
nextflow.preview.topic = true
include { CFRNA_VALIDATE } from '../../../workflow/modules/local/validate/main'
include { cohortFile; gtfTuple; fastaTuple } from '../lib'

workflow TEST_CFRNA_VALIDATE {
    CFRNA_VALIDATE(cohortFile('samplesheet.csv'), cohortFile('contrasts.csv'), gtfTuple(), fastaTuple())
}

workflow {
    TEST_CFRNA_VALIDATE()
}
