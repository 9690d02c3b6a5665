// CFRNA_REPORT: the QC, matrix, DE, pathways and pipeline_info outputs of --results, staged as the pipeline stages them
nextflow.preview.topic = true
include { CFRNA_REPORT } from '../../../workflow/modules/local/report/main'
include { resultFiles } from '../lib'

workflow TEST_CFRNA_REPORT {
    def input = [
        [id: 'cohort'],
        resultFiles('qc/*'),
        resultFiles('matrix/*').findAll { it.name != 'cfrna.h5ad' },   // the matrix tables, as the pipeline stages them
        resultFiles('de/*'),
        resultFiles('pathways/*'),
        resultFiles('pipeline_info/{params.json,software_versions.yml,input_checksums.tsv}')
    ]
    CFRNA_REPORT(input)
}

workflow {
    TEST_CFRNA_REPORT()
}
