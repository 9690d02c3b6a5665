// CFRNA_REPORT: the AnnData, QC summary (+ complexity curves) and pipeline_info provenance files of --results, as the pipeline stages them
nextflow.preview.topic = true
include { CFRNA_REPORT } from '../../../workflow/modules/local/report/main'
include { resultFiles } from '../lib'

workflow TEST_CFRNA_REPORT {
    def input = [
        [id: 'cohort'],
        resultFiles('matrix/cfrna.h5ad')[0],
        resultFiles('qc/*').findAll { it.name in ['qc_summary.tsv', 'complexity_curves.tsv'] },   // as the pipeline stages them
        resultFiles('pipeline_info/params.json')[0],
        resultFiles('pipeline_info/software_versions.yml')[0],
        resultFiles('pipeline_info/input_checksums.tsv')[0]
    ]
    CFRNA_REPORT(input)
}

workflow {
    TEST_CFRNA_REPORT()
}
