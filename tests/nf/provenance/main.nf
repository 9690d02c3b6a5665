// CFRNA_PROVENANCE: pipeline_info/ of the cohort's inputs (the bundled gene sets)
nextflow.preview.topic = true
include { CFRNA_PROVENANCE } from '../../../workflow/modules/local/provenance/main'
include { cohortFile; gtfTuple; fastaTuple } from '../lib'

workflow TEST_CFRNA_PROVENANCE {
    CFRNA_PROVENANCE('{"aligner": "mappy"}', cohortFile('samplesheet.csv'), cohortFile('contrasts.csv'),
                     fastaTuple(), gtfTuple(), [], 'mappy')
}

workflow {
    TEST_CFRNA_PROVENANCE()
}
