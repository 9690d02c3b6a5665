process CFRNA_ALIGN {
    tag "${meta.id}"
    label 'process_medium'
    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(reads)   // meta: [id, single_end, strandedness, ...]; reads: [R1] or [R1, R2]
    path fasta                     // file: genome FASTA
    path gtf                       // file: GTF
    path index                     // dir: from CFRNA_INDEX
    val aligner                    // string: mappy | star

    output:
    tuple val(meta), path("*.bam"), path("*.bam.bai"), emit: bam
    tuple val(meta), path("*.align.json")            , emit: json
    path "versions.yml"                              , emit: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    def prefix = task.ext.prefix ?: "${meta.id}"
    def r2 = meta.single_end ? '' : "--fastq-2 ${reads[1]}"
    """
    cfrna-align \\
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

    cat <<-END_VERSIONS > versions.yml
    "${task.process}":
        cfrna: \$(cfrna-align --version 2>&1 | sed 's/^cfrna //')
    END_VERSIONS
    """

    stub:
    def prefix = task.ext.prefix ?: "${meta.id}"
    """
    touch ${prefix}.bam ${prefix}.bam.bai
    echo '{}' > ${prefix}.align.json
    echo '"${task.process}": {cfrna: stub}' > versions.yml
    """
}
