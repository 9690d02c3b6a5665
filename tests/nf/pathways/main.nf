// CFRNA_PATHWAYS: the DE tables and the AnnData of --results, the bundled gene sets
nextflow.preview.topic = true
include { CFRNA_PATHWAYS } from '../../../workflow/modules/local/pathways/main'
include { cohortFile; resultFiles; gtfTuple } from '../lib'

workflow TEST_CFRNA_PATHWAYS {
    def input = [[id: 'cohort'], resultFiles('de/*'), resultFiles('matrix/samples.tsv')[0],
                 resultFiles('matrix/cfrna.h5ad')[0]]
    CFRNA_PATHWAYS(input, cohortFile('samplesheet.csv'), gtfTuple(), [])
}

workflow {
    TEST_CFRNA_PATHWAYS()
}
