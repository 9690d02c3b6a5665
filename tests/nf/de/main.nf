// CFRNA_DE: the matrix of --results (tables and AnnData) and the cohort's contrasts
nextflow.preview.topic = true
include { CFRNA_DE } from '../../../workflow/modules/local/de/main'
include { cohortFile; resultFiles; gtfTuple } from '../lib'

workflow TEST_CFRNA_DE {
    def input = [[id: 'cohort'], resultFiles('matrix/gene_counts.tsv')[0], resultFiles('matrix/samples.tsv')[0],
                 resultFiles('matrix/cfrna.h5ad')[0]]
    CFRNA_DE(input, cohortFile('samplesheet.csv'), cohortFile('contrasts.csv'), gtfTuple())
}

workflow {
    TEST_CFRNA_DE()
}
