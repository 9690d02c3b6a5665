// CFRNA_COUNT: the BAMs of --samples (from --results), strandedness from their align.json
nextflow.preview.topic = true
include { CFRNA_COUNT } from '../../../workflow/modules/local/count/main'
include { sampleMetas; sampleMeta; resultFiles; gtfTuple } from '../lib'

workflow TEST_CFRNA_COUNT {
    ch_bam = Channel.fromList(sampleMetas()).map { m ->
        [sampleMeta(m)] + resultFiles("alignment/${m.id}.{bam,bam.bai,align.json}").sort { f ->
            ['.bam', '.bai', '.json'].findIndexOf { f.name.endsWith(it) }
        }
    }
    CFRNA_COUNT(ch_bam, gtfTuple())
}

workflow {
    TEST_CFRNA_COUNT()
}
