// CFRNA_ALIGN: the trimmed reads of --samples (from --results) against the run's mappy index
nextflow.preview.topic = true
include { CFRNA_ALIGN } from '../../../workflow/modules/local/align/main'
include { sampleMetas; sampleMeta; resultFiles; gtfTuple; fastaTuple } from '../lib'

workflow TEST_CFRNA_ALIGN {
    ch_reads = Channel.fromList(sampleMetas()).map { m ->
        [sampleMeta(m), resultFiles("trimmed/${m.id}_{1,2}.trimmed.fastq.gz")]
    }
    ch_index = Channel.value([[id: 'genome'], file(params.index, type: 'dir', checkIfExists: true)])
    CFRNA_ALIGN(ch_reads, fastaTuple(), gtfTuple(), ch_index, 'mappy')
}

workflow {
    TEST_CFRNA_ALIGN()
}
