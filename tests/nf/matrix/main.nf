// CFRNA_MATRIX: every sample's counts of --results and its QC summary
nextflow.preview.topic = true
include { CFRNA_MATRIX } from '../../../workflow/modules/local/matrix/main'
include { cohortFile; resultFiles; gtfTuple } from '../lib'

workflow TEST_CFRNA_MATRIX {
    def input = [[id: 'cohort'], resultFiles('counts/*.counts{,.dedup}.tsv'), resultFiles('qc/qc_summary.tsv')[0]]
    CFRNA_MATRIX(input, cohortFile('samplesheet.csv'), gtfTuple())
}

workflow {
    TEST_CFRNA_MATRIX()
}
