process CFRNA_ALIGN {
    tag "${meta.id}"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"
    container 'localhost/cfrna:0.1.0'

    input:
    tuple val(meta), path(reads)    // meta: [id, single_end, strandedness, ...]; reads: [R1] or [R1, R2]
    tuple val(meta2), path(fasta)   // reference genome FASTA
    tuple val(meta3), path(gtf)     // reference annotation
    tuple val(meta4), path(index)   // index folder of CFRNA_INDEX
    val aligner                     // string: mappy | star (the aligner of that index)

    output:
    tuple val(meta), path("*.bam"), path("*.bam.bai"), emit: bam
    tuple val(meta), path("*.align.json")            , emit: json
    tuple val("${task.process}"), val('cfrna'), eval('cfrna --version | sed "s/^cfrna //"'), emit: versions_cfrna, topic: versions
    // the aligner that ran: mappy (minimap2's Python binding) or STAR
    tuple val("${task.process}"), val("${aligner == 'star' ? 'star' : 'mappy'}"), eval("${aligner == 'star' ? 'STAR --version' : 'python -c \'import mappy; print(mappy.__version__)\''}"), emit: versions_aligner, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}"
    def r2 = meta.single_end ? '' : "--fastq-2 ${reads[1]}"
    """
    cfrna align \\
        --sample ${prefix} \\
        --fasta ${fasta} \\
        --gtf ${gtf} \\
        --fastq-1 ${reads[0]} \\
        ${r2} \\
        --aligner ${aligner} \\
        --index "\$(readlink -f ${index})" \\
        --strandedness ${meta.strandedness} \\
        --outdir . \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.bam ${prefix}.bam.bai
    echo '{}' > ${prefix}.align.json
    """
}
