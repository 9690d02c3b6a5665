// CFRNA_QC: every sample of --results (counts, alignment, trimming metrics)
nextflow.preview.topic = true
include { CFRNA_QC } from '../../../workflow/modules/local/qc/main'
include { cohortFile; resultFiles; gtfTuple } from '../lib'

workflow TEST_CFRNA_QC {
    def input = [
        [id: 'cohort'],
        resultFiles('counts/*.counts.tsv*'),
        resultFiles('alignment/*.{align.json,bam,bam.bai}'),
        resultFiles('trimmed/*.trim.json')
    ]
    CFRNA_QC(input, cohortFile('samplesheet.csv'), gtfTuple())
}

workflow {
    TEST_CFRNA_QC()
}
